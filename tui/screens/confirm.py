"""Confirmation dialogs: a soft risk breach before an order goes, and the kill switch.

Each is answered by a plain key (``y``, ``n``; ``f`` to also flatten) as well
as by its buttons; Esc cancels too but is never the only way out, because over
SSH a lone Esc can arrive late or merged with the next key. Focus starts on
Cancel, so a stray Enter (a second press of the key that sent the order) cancels
rather than confirms.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

_T = TypeVar("_T")


class Dialog(ModalScreen[_T]):
    """The look shared by the dialogs: a framed box in the middle of a dimmed screen."""

    DEFAULT_CSS = """
    Dialog {
        align: center middle;
        background: $background 60%;
        & > Vertical {
            width: 72;
            max-width: 95%;
            height: auto;
            border: thick $warning;
            background: $surface;
            padding: 1 2;
        }
        & .title { text-style: bold; color: $text-warning; width: 100%; }
        & .reason { color: $text; width: 100%; margin-top: 1; }
        & .hint { color: $text-muted; width: 100%; margin-top: 1; }
        & Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
        & Button { margin-left: 2; }
    }
    """

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()


_CANCEL_BINDINGS = [
    Binding(
        "n,escape",
        "cancel",
        "Cancel",
        id="dialog.cancel",
        tooltip="Close the dialog without doing anything",
    ),
]


class ConfirmOrder(Dialog[bool]):
    """Send an order that breaches soft limits? Dismisses with True to send it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "y",
            "confirm",
            "Send it",
            id="dialog.confirm",
            tooltip="Confirm: send the order (or do what the dialog asks)",
        ),
        *_CANCEL_BINDINGS,
    ]

    def __init__(self, summary: str, reasons: Sequence[str]) -> None:
        super().__init__()
        self.summary = summary
        self.reasons = tuple(reasons)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Confirm this order?", classes="title")
            yield Static(self.summary, classes="reason", markup=False)
            for reason in self.reasons:
                yield Static(f"! {reason}", classes="reason", markup=False)
            yield Label("y sends it  ·  n or Esc cancels", classes="hint")
            with Horizontal():
                yield Button("Send (y)", id="confirm", variant="warning")
                yield Button("Cancel (n)", id="cancel", variant="primary")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")


class KillChoice(StrEnum):
    """What the trader chose in the kill-switch dialog."""

    KILL = "kill"
    KILL_AND_FLATTEN = "kill_and_flatten"
    CANCEL = "cancel"


class ConfirmKill(Dialog[KillChoice]):
    """Engage the kill switch (cancel every open order, block new risk), optionally flattening."""

    DEFAULT_CSS = """
    ConfirmKill {
        & > Vertical { border: thick $error; }
        & .title { color: $text-error; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "y",
            "choose('kill')",
            "Kill",
            id="dialog.confirm",
            tooltip="Confirm: send the order (or do what the dialog asks)",
        ),
        Binding(
            "f",
            "choose('kill_and_flatten')",
            "Kill and flatten",
            id="dialog.flatten",
            tooltip="Engage the kill switch and close every position at market",
        ),
        *_CANCEL_BINDINGS,
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Engage the kill switch?", classes="title")
            yield Static(
                "Every open order is cancelled and no new order that adds risk is accepted "
                "until the switch is reset (command palette, or type reset-kill).",
                classes="reason",
            )
            yield Label("y kills  ·  f kills and flattens  ·  n or Esc cancels", classes="hint")
            with Horizontal():
                yield Button("Kill (y)", id="kill", variant="error")
                yield Button("Kill + flatten (f)", id="kill_and_flatten", variant="error")
                yield Button("Cancel (n)", id="cancel", variant="primary")

    def action_choose(self, choice: str) -> None:
        self.dismiss(KillChoice(choice))

    def action_cancel(self) -> None:
        self.dismiss(KillChoice.CANCEL)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(KillChoice(event.button.id))
