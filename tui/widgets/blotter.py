"""The order blotter: working orders first, then recent ones, one row per order.

Built on the stock ``DataTable`` on purpose: orders change a few times a second
at most (the quote board is the ticking table), and the table brings row
cursor, paging and scrolling that traders already know. It is kept cheap the
way textual-notes.md measured: rows are keyed by order id, column widths are
fixed up front (never ``update_width=True``), a pull that changed nothing
touches nothing, a changed order updates only its changed cells, and the rows
are rebuilt only when the order of rows changes (a new order, or one that
stopped working).

Execution algos' parent orders get a row of their own (id ``A3``, the algo as
the type, the parent's state as the status) with their children nested under
it (``└#12``); ``p`` pauses or resumes the selected parent, ctrl+x cancels it
with its children.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from engine.client import EngineSnapshot
from engine.core.models import Order, OrderStatus, OrderType
from engine.execution import ParentState, ParentView
from tui.widgets.format import (
    NA,
    Column,
    fit_columns,
    fmt_order_id,
    fmt_pct,
    fmt_price,
    fmt_qty,
    fmt_time,
)

COLUMNS = (
    Column("id", "ID", 5, left=True),
    Column("symbol", "SYMBOL", 6, left=True),
    Column("side", "SIDE", 4, left=True),
    Column("qty", "QTY", 7),
    Column("filled", "FILLED", 7, drop=1),
    Column("type", "TYPE", 6, left=True, drop=2),
    Column("price", "PRICE", 8),
    Column("status", "STATUS", 9, left=True),
    Column("avg", "AVG FILL", 8, drop=3),
    Column("time", "TIME", 8, drop=4),
)
GAP = 1

_TYPE_NAMES = {
    OrderType.MARKET: "mkt",
    OrderType.LIMIT: "lmt",
    OrderType.STOP: "stp",
    OrderType.STOP_LIMIT: "stplmt",
    OrderType.TRAILING_STOP: "trail",
}

_STATUS_NAMES = {
    OrderStatus.PENDING_NEW: "pending",
    OrderStatus.PARTIALLY_FILLED: "partial",
    OrderStatus.PENDING_CANCEL: "canceling",
    OrderStatus.PENDING_REPLACE: "replacing",
    OrderStatus.DONE_FOR_DAY: "done",
}

# Component class of each status's cell; unlisted closed states read as muted history.
_STATUS_ROLES = {
    OrderStatus.FILLED: "blotter--filled",
    OrderStatus.REJECTED: "blotter--rejected",
    OrderStatus.PARTIALLY_FILLED: "blotter--partial",
}

_PARENT_ROLES = {
    ParentState.WORKING: "blotter--working",
    ParentState.PAUSED: "blotter--partial",
    ParentState.COMPLETED: "blotter--filled",
    ParentState.FAILED: "blotter--rejected",
    ParentState.CANCELED: "blotter--closed",
}
NESTED = "└"  # marks a child order's id under its parent's row

_Cells = tuple[tuple[str, str], ...]  # (text, component class) per column


def blotter_order(order: Order) -> tuple[int, int, str]:
    """Sort key: working orders first, newest submitted first; then closed ones, newest first."""
    if order.is_open:
        return (0, -order.created_ns, order.id)
    return (1, -order.updated_ns, order.id)


def _placed(order: Order) -> tuple[int, int, str]:
    """Sort key for when an order was placed: orders placed in one engine instant fall back on
    their ids, whose sequence numbers grow in length before they grow in value."""
    return (order.created_ns, len(order.id), order.id)


def _price(order: Order) -> str:
    if order.type is OrderType.TRAILING_STOP:
        if order.trail_percent is not None:
            return fmt_pct(order.trail_percent).lstrip("+")
        return fmt_price(order.trail_price)
    return fmt_price(order.limit_price if order.limit_price is not None else order.stop_price)


def parent_row_id(parent_id: str) -> str:
    """The short form of a parent's id in the blotter: ``algo-3`` -> ``A3``."""
    head, _, seq = parent_id.rpartition("-")
    return f"A{seq}" if head and seq.isdigit() else parent_id


def _parent_order(parent: ParentView) -> tuple[int, int, str]:
    """Sort key of a parent among top-level orders, as ``blotter_order``."""
    if parent.is_open:
        return (0, -parent.created_ns, parent.id)
    return (1, -parent.updated_ns, parent.id)


def _parent_cells(parent: ParentView) -> _Cells:
    return (
        (parent_row_id(parent.id), ""),
        (parent.symbol, "blotter--symbol"),
        (parent.side.value, f"blotter--{parent.side.value}"),
        (fmt_qty(parent.qty), ""),
        (fmt_qty(parent.filled_qty), ""),
        (parent.algo, ""),
        (fmt_price(parent.limit_price) if parent.limit_price is not None else NA, ""),
        (parent.state.value, _PARENT_ROLES[parent.state]),
        (fmt_price(parent.avg_price), ""),
        (fmt_time(parent.updated_ns), "blotter--muted"),
    )


def parent_detail(parent: ParentView) -> str:
    """The parent's terms, state, progress and execution quality, for the tooltip."""
    quality = parent.quality
    lines = [
        parent.id,
        f"{parent.side.value} {parent.qty} {parent.symbol} {parent.algo}",
        f"{parent.state.value}: {fmt_qty(parent.filled_qty)} filled ({parent.progress_pct:.1f}%),"
        f" {len(parent.children)} children",
    ]
    if parent.reason:
        lines.append(parent.reason)
    figures = (
        ("arrival slippage", quality.arrival_slippage_bps, " bps"),
        ("vs interval VWAP", quality.vwap_slippage_bps, " bps"),
        ("shortfall", quality.shortfall, " $"),
        ("participation", quality.participation_pct, "%"),
        ("schedule deviation", quality.schedule_deviation_pct, "%"),
    )
    lines += [f"{name} {value}{unit}" for name, value, unit in figures if value is not None]
    return "\n".join(lines)


def _cells(order: Order, nested: bool = False) -> _Cells:
    status = order.status
    role = _STATUS_ROLES.get(status) or ("blotter--working" if order.is_open else "blotter--closed")
    return (
        (NESTED + fmt_order_id(order.id) if nested else fmt_order_id(order.id), ""),
        (order.symbol, "blotter--symbol"),
        (order.side.value, f"blotter--{order.side.value}"),
        (fmt_qty(order.qty), ""),
        (fmt_qty(order.filled_qty), ""),
        (_TYPE_NAMES.get(order.type, order.type.value), ""),
        (_price(order) if order.type is not OrderType.MARKET else NA, ""),
        (_STATUS_NAMES.get(status, status.value), role),
        (fmt_price(order.filled_avg_price), ""),
        (fmt_time(order.updated_ns), "blotter--muted"),
    )


def order_detail(order: Order) -> str:
    """What the short row leaves out: the full id, prices, time in force, source and reason."""
    lines = [order.id, f"{order.side.value} {order.qty} {order.symbol} {order.type.value}"]
    if order.limit_price is not None:
        lines.append(f"limit {fmt_price(order.limit_price)}")
    if order.stop_price is not None:
        lines.append(f"stop {fmt_price(order.stop_price)}")
    lines.append(f"{order.tif.value}, from {order.source}, submitted {fmt_time(order.created_ns)}")
    if order.replaces:
        lines.append(f"replaces {order.replaces}")
    if order.reason:
        lines.append(order.reason)
    return "\n".join(lines)


class _OrderAction(Message):
    """A request about one order, made from the blotter."""

    def __init__(self, order_id: str, *, blotter: Blotter | None = None) -> None:
        super().__init__()
        self.order_id = order_id
        self.blotter = blotter

    @property
    def control(self) -> Blotter | None:
        return self.blotter


class PauseRequested(_OrderAction):
    """The trader asked to pause (``resume`` False) or resume the parent ``order_id``."""

    def __init__(self, order_id: str, *, resume: bool, blotter: Blotter | None = None) -> None:
        super().__init__(order_id, blotter=blotter)
        self.resume = resume


class Blotter(DataTable, can_focus=True):
    """Working and recent orders: id, symbol, side, qty, filled, type, price, status, avg fill, time.

    Keys while focused: ctrl+x asks to cancel the selected order, ctrl+r to
    replace it (the screen decides how, from the posted message). The selected
    order's full id and details are in the tooltip.
    """

    DEFAULT_CSS = """
    Blotter {
        height: 1fr;
        & > .blotter--working { color: $accent; text-style: bold; }
        & > .blotter--partial { color: $warning; text-style: bold; }
        & > .blotter--filled { color: $success; }
        & > .blotter--rejected { color: $error; }
        & > .blotter--closed { color: $text-muted; }
        & > .blotter--muted { color: $text-muted; }
        & > .blotter--symbol { text-style: bold; }
        & > .blotter--buy { color: $text-success; }
        & > .blotter--sell { color: $text-error; }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "blotter--working",
        "blotter--partial",
        "blotter--filled",
        "blotter--rejected",
        "blotter--closed",
        "blotter--muted",
        "blotter--symbol",
        "blotter--buy",
        "blotter--sell",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        # The footer of an 80-column terminal has room for one blotter key next to the kill
        # and quit keys: cancel is shown, replace is listed by the keys screen (F1) only.
        Binding(
            "ctrl+x",
            "cancel_order",
            "Cancel",
            id="blotter.cancel",
            tooltip="Cancel the selected working order",
        ),
        Binding(
            "ctrl+r",
            "replace_order",
            "Replace",
            show=False,
            id="blotter.replace",
            tooltip="Replace the selected working order (new quantity or price)",
        ),
        Binding(
            "p",
            "pause_parent",
            "Pause/resume",
            show=False,
            id="blotter.pause",
            tooltip="Pause or resume the selected algo (on its row or a child's)",
        ),
        # In a row table, home and end mean the first and the last order, as on the quote board.
        Binding(
            "home",
            "scroll_top",
            "First",
            show=False,
            id="blotter.first",
            tooltip="Select the first row (the newest working order)",
        ),
        Binding(
            "end",
            "scroll_bottom",
            "Last",
            show=False,
            id="blotter.last",
            tooltip="Select the last row (the oldest recent order)",
        ),
    ]

    class CancelRequested(_OrderAction):
        """The trader asked to cancel ``order_id``."""

    class ReplaceRequested(_OrderAction):
        """The trader asked to replace ``order_id``; ``Blotter.order`` gives its current terms."""

    PauseRequested = PauseRequested

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        # No cell padding: gaps are placed by the cells themselves, so that the table
        # fits as many columns as the quote board does in the same width.
        super().__init__(
            name=name,
            id=id,
            classes=classes,
            cursor_type="row",
            zebra_stripes=False,
            cell_padding=0,
        )
        self._fitted: tuple[int, ...] = ()
        self._orders: dict[str, Order] = {}
        self._parents: dict[str, ParentView] = {}
        self._signatures: dict[str, tuple[object, ...]] = {}
        self._cells: dict[str, _Cells] = {}
        self._sequence: list[str] = []
        self._styles: dict[str, Style] = {}
        self._followed: str | None = None  # the order the cursor was last moved to by following

    def on_mount(self) -> None:
        self._fit(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        """Choose the columns that fit ``width``: time goes first, then avg fill, type, filled."""
        fitted = fit_columns(COLUMNS, width or sum(c.width + GAP for c in COLUMNS), GAP)
        indexes = tuple(COLUMNS.index(c) for c in fitted)
        if indexes == self._fitted:
            return
        selected = self.selected_order
        self._fitted = indexes
        self.clear(columns=True)
        for position, index in enumerate(indexes):
            column = COLUMNS[index]
            label = Text(self._gap(position) + column.place(column.title))
            self.add_column(label, width=column.width + len(self._gap(position)), key=column.key)
        if self._sequence:
            self._rebuild(self._sequence, selected)

    @staticmethod
    def _gap(position: int) -> str:
        return " " * GAP if position else ""

    # -- data -------------------------------------------------------------------------------

    def order(self, order_id: str) -> Order | None:
        """The latest record of ``order_id`` as shown."""
        return self._orders.get(order_id)

    @property
    def selected_order(self) -> Order | None:
        """The order under the cursor (None on a parent's row)."""
        if not self._sequence or not 0 <= self.cursor_row < len(self._sequence):
            return None
        return self._orders.get(self._sequence[self.cursor_row])

    @property
    def selected_parent(self) -> ParentView | None:
        """The algo parent under the cursor: its own row, or the parent of a child's row."""
        if not self._sequence or not 0 <= self.cursor_row < len(self._sequence):
            return None
        key = self._sequence[self.cursor_row]
        order = self._orders.get(key)
        return self._parents.get(order.parent_id or "" if order is not None else key)

    @property
    def order_ids(self) -> list[str]:
        """Row order, top to bottom."""
        return list(self._sequence)

    def apply(self, snapshot: EngineSnapshot) -> None:
        """Show the snapshot's orders; rows whose order did not change are left alone."""
        book = snapshot.book
        if book is None:
            return
        if not self._fitted:
            self._fit(self.size.width)
        orders = {o.id: o for o in book.orders}
        parents = {p.id: p for p in book.parents}
        changed = []
        for order in orders.values():
            nested = order.parent_id in parents
            signature = (
                order.status,
                order.filled_qty,
                order.updated_ns,
                order.replaced_by,
                nested,
            )
            if self._signatures.get(order.id) != signature:
                self._signatures[order.id] = signature
                self._cells[order.id] = _cells(order, nested)
                changed.append(order.id)
        for parent in parents.values():
            signature = (parent.state, parent.filled_qty, parent.updated_ns)
            if self._signatures.get(parent.id) != signature:
                self._signatures[parent.id] = signature
                self._cells[parent.id] = _parent_cells(parent)
                changed.append(parent.id)
        gone = (self._orders.keys() | self._parents.keys()) - (orders.keys() | parents.keys())
        for row_id in gone:
            del self._signatures[row_id], self._cells[row_id]
        self._orders = orders
        self._parents = parents
        if not changed and not gone:
            return
        selected = self.selected_order
        # While the cursor is on the order it was last moved to by following (at first the top
        # row), it follows the newest order; once the trader moves it, it stays where it is.
        following = selected is None or selected.id == self._followed
        if following and self._sequence and orders:
            selected = max(orders.values(), key=_placed)
        sequence = _sequence(orders, parents)
        if sequence != self._sequence:
            self._rebuild(sequence, selected)
        else:
            for order_id in changed:
                self._update_row(order_id)
        if following:
            shown = self.selected_order
            self._followed = None if shown is None else shown.id
        self._selection_changed()

    def _render_cells(self, cells: _Cells) -> list[Text]:
        rendered = []
        for position, index in enumerate(self._fitted):
            text, role = cells[index]
            rendered.append(
                Text.assemble(self._gap(position), (COLUMNS[index].place(text), self._style(role)))
            )
        return rendered

    def _rebuild(self, sequence: list[str], selected: Order | None) -> None:
        """Fill the table in ``sequence`` order, keeping the cursor on the ``selected`` order."""
        self._sequence = sequence
        self.clear()
        for order_id in sequence:
            self.add_row(*self._render_cells(self._cells[order_id]), key=order_id)
        if selected is not None and selected.id in self._cells:
            self.move_cursor(row=sequence.index(selected.id))

    def _update_row(self, order_id: str) -> None:
        cells = self._render_cells(self._cells[order_id])
        for index, cell in zip(self._fitted, cells, strict=True):
            self.update_cell(order_id, COLUMNS[index].key, cell)

    # -- styles -----------------------------------------------------------------------------

    def _style(self, role: str) -> Style:
        if not role:
            return Style.null()
        style = self._styles.get(role)
        if style is None:
            # Only the colour and weight: the row and cursor backgrounds stay the table's.
            full = self.get_component_rich_style(role)
            style = self._styles[role] = Style(color=full.color, bold=full.bold)
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # A new theme: cell colours were baked into the rows' Text, so paint them again.
        before = dict(self._styles)
        self._styles.clear()
        if before and self.is_mounted:
            self.call_after_refresh(self._restyle, before)

    def _restyle(self, before: dict[str, Style]) -> None:
        if any(self._style(role) != style for role, style in before.items()):
            for order_id in self._sequence:
                self._update_row(order_id)

    # -- actions ----------------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._selection_changed()

    def _selection_changed(self) -> None:
        order = self.selected_order
        if order is not None:
            self.tooltip = order_detail(order)
        else:
            parent = self.selected_parent
            self.tooltip = None if parent is None else parent_detail(parent)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("cancel_order", "replace_order"):
            order = self.selected_order
            if order is None and action == "cancel_order":
                parent = self.selected_parent
                return True if parent is not None and parent.is_open else None
            # Shown but greyed out when the selected order can no longer change.
            return True if order is not None and order.is_open else None
        if action == "pause_parent":
            parent = self.selected_parent
            return True if parent is not None and parent.is_open else None
        return super().check_action(action, parameters)

    def action_cancel_order(self) -> None:
        order = self.selected_order
        if order is not None and order.is_open:
            self.post_message(self.CancelRequested(order.id, blotter=self))
        elif order is None and (parent := self.selected_parent) is not None and parent.is_open:
            self.post_message(self.CancelRequested(parent.id, blotter=self))

    def action_pause_parent(self) -> None:
        parent = self.selected_parent
        if parent is not None and parent.is_open:
            resume = parent.state is ParentState.PAUSED
            self.post_message(self.PauseRequested(parent.id, resume=resume, blotter=self))

    def action_replace_order(self) -> None:
        order = self.selected_order
        if order is not None and order.is_open:
            self.post_message(self.ReplaceRequested(order.id, blotter=self))


def _sequence(orders: dict[str, Order], parents: dict[str, ParentView]) -> list[str]:
    """Row keys: top-level orders and parents in blotter order, each parent's children under it."""
    children: dict[str, list[Order]] = {}
    top: list[tuple[tuple[int, int, str], str]] = []
    for order in orders.values():
        if order.parent_id in parents:
            children.setdefault(order.parent_id, []).append(order)
        else:
            top.append((blotter_order(order), order.id))
    top += [(_parent_order(parent), parent.id) for parent in parents.values()]
    sequence = []
    for _, key in sorted(top):
        sequence.append(key)
        if key in parents:
            sequence += [o.id for o in sorted(children.get(key, ()), key=blotter_order)]
    return sequence
