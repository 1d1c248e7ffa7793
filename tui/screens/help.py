"""The keys screen (F1): every binding with an id, its keys now (after the keymap) and what it does."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Label, Static


@dataclass(slots=True, frozen=True)
class KeyRow:
    """One binding as the help screen lists it."""

    keys: str  # as displayed, e.g. "F2" or "n, Esc"
    description: str
    binding_id: str
    where: str  # "everywhere", "order line", "quotes", ...


def class_bindings(node_class: type[DOMNode]) -> list[Binding]:
    """The bindings ``node_class`` and its bases declare, base classes first, compound keys split."""
    declared: list[Binding] = []
    for cls in reversed(node_class.__mro__):
        declared.extend(Binding.make_bindings(cls.__dict__.get("BINDINGS", ())))
    return declared


def key_rows(
    sources: Iterable[tuple[str, type[DOMNode]]],
    keymap: Mapping[str, str],
    display: Callable[[Binding], str],
) -> list[KeyRow]:
    """A row per binding id found in ``sources`` (where, class), in the order first seen.

    A keymap entry replaces a binding's keys; ``display`` formats one key (the
    app's ``get_key_display``).
    """
    keys: dict[str, list[str]] = {}
    first: dict[str, tuple[str, Binding]] = {}
    for where, node_class in sources:
        for binding in class_bindings(node_class):
            if binding.id is None:
                continue
            if binding.id not in first:
                first[binding.id] = (where, binding)
                keys[binding.id] = []
            if binding.key not in keys[binding.id]:
                keys[binding.id].append(binding.key)
    rows = []
    for binding_id, (where, binding) in first.items():
        bound = keymap.get(binding_id)
        chosen = [k.strip() for k in bound.split(",")] if bound else keys[binding_id]
        shown = ", ".join(display(binding.with_key(key)) for key in chosen)
        rows.append(KeyRow(shown, binding.tooltip or binding.description, binding_id, where))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key, grouped by where it works. Arrow keys scroll; F1, Esc or q close it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 60%;
        & > Vertical {
            width: 110;
            max-width: 100%;
            height: 90%;
            border: thick $primary;
            background: $surface;
            padding: 0 1;
        }
        & .title { text-style: bold; color: $text-primary; margin-bottom: 1; }
        & .hint { color: $text-muted; margin-top: 1; width: 100%; height: auto; }
        & VerticalScroll { height: 1fr; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "f1,escape,q",
            "close",
            "Close",
            id="help.close",
            tooltip="Close the keys screen",
        ),
    ]

    def __init__(self, rows: Iterable[KeyRow]) -> None:
        super().__init__()
        self.rows = tuple(rows)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("tickdeck keys", classes="title")
            with VerticalScroll():
                yield Static(self._table(), markup=False)
            yield Label(
                'Remap any key in the config: [console.keymap] with  id = "keys"  '
                '(e.g. app.buy_ticket = "f5").  F1, Esc or q closes.',
                classes="hint",
                markup=False,
            )

    def _table(self) -> Table:
        # A Rich table wraps long descriptions inside their own column.
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("KEYS", no_wrap=True, style="bold")
        table.add_column("WHERE", no_wrap=True, style="dim")
        table.add_column("ID", no_wrap=True, style="dim")
        table.add_column("WHAT IT DOES", ratio=1)
        for row in self.rows:
            table.add_row(row.keys, row.where, row.binding_id, row.description)
        return table

    def action_close(self) -> None:
        self.dismiss(None)
