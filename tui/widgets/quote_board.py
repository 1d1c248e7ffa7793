"""The quote board: one row per symbol, repainting only the rows whose quotes changed.

A Line-API widget (the stock DataTable re-renders every visible cell on any
change; see textual-notes.md). Each row keeps one rendered ``Strip`` keyed by the
row's ``SymbolSnapshot.version``, the width, and its cursor and flash state; a
theme, focus or CSS change drops every key. So a pull that changes three
symbols rebuilds three strips and repaints three lines, and nothing else.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.client import EngineSnapshot
from engine.core.conflate import SymbolSnapshot
from tui.widgets.format import (
    NA,
    Column,
    fit_columns,
    fmt_pct,
    fmt_price,
    fmt_volume,
    header_line,
)

SPARK_WIDTH = 16
SPARK_LEVELS = "▁▂▃▄▅▆▇█"
_HALF = Decimal("0.5")
GAP = 1

# Flash bits: which cells changed in the latest pull.
BID, ASK, LAST = 1, 2, 4

COLUMNS = (
    Column("symbol", "SYMBOL", 6, left=True),
    Column("bid", "BID", 8),
    Column("ask", "ASK", 8),
    Column("last", "LAST", 8),
    Column("change", "CHG%", 8),
    Column("volume", "VOL", 6, drop=2),
    Column("spread", "SPRD", 6, drop=1),
    Column("trend", "TREND", SPARK_WIDTH, drop=3, left=True),
)


def sparkline(values: tuple[Decimal, ...], width: int = SPARK_WIDTH) -> str:
    """``values`` as ``width`` block characters, lowest ▁ to highest █, left-aligned.

    With more values than cells, each cell shows the last value of its slice of
    the day (the minute close at that cell's end), so the last cell is the latest close.
    """
    count = len(values)
    if count == 0:
        return ""
    if count > width:
        values = tuple(values[(cell + 1) * count // width - 1] for cell in range(width))
    low, high = min(values), max(values)
    if high == low:
        return SPARK_LEVELS[len(SPARK_LEVELS) // 2 - 1] * len(values)
    top = len(SPARK_LEVELS) - 1
    span = high - low
    return "".join(SPARK_LEVELS[int((v - low) * top / span + _HALF)] for v in values)


def _move(new: Decimal | None, old: Decimal | None, direction: int) -> tuple[int, bool]:
    """The direction of the latest change (+1 up, -1 down) and whether the value moved now.

    An unchanged or missing value keeps the direction of its last move.
    """
    if new is None or old is None or new == old:
        return direction, False
    return (1 if new > old else -1), True


class _Row:
    """One symbol's latest snapshot, tick directions, flash bits and cached strip."""

    __slots__ = (
        "ask_dir",
        "bid_dir",
        "flash",
        "key",
        "last_dir",
        "snap",
        "spark",
        "spark_closes",
        "strip",
        "symbol",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.snap: SymbolSnapshot | None = None
        self.bid_dir = self.ask_dir = self.last_dir = 0
        self.flash = 0
        self.spark = ""
        self.spark_closes: tuple[Decimal, ...] = ()
        self.key: tuple | None = None
        self.strip: Strip | None = None

    @property
    def version(self) -> int:
        return -1 if self.snap is None else self.snap.version

    def update(self, snap: SymbolSnapshot) -> int:
        """Take a newer snapshot; returns the flash bits of the cells whose value moved."""
        old = self.snap
        flash = 0
        if old is not None:
            self.bid_dir, bid_moved = _move(snap.bid, old.bid, self.bid_dir)
            self.ask_dir, ask_moved = _move(snap.ask, old.ask, self.ask_dir)
            self.last_dir, last_moved = _move(snap.last, old.last, self.last_dir)
            flash = BID * bid_moved | ASK * ask_moved | LAST * last_moved
        # Equal tuples share their Decimal objects, so this compare is cheap; the
        # sparkline is redrawn once a minute, not on every tick.
        if snap.closes != self.spark_closes:
            self.spark_closes = snap.closes
            self.spark = sparkline(snap.closes)
        self.snap = snap
        self.flash = flash
        return flash


class QuoteBoard(ScrollView, can_focus=True):
    """Bid, ask, last, change %, volume, spread and an intraday sparkline per symbol.

    Rows follow the watchlist given at construction; symbols first seen in a
    snapshot are appended. Bid, ask and last are coloured by the direction of
    their latest change, and flash for the one pull in which they changed (no
    timers: the flash fades on the next ``apply``). Change % and the sparkline are
    coloured by the day's sign. At narrow widths the sparkline goes first, then
    volume, then spread.
    """

    DEFAULT_CSS = """
    QuoteBoard {
        height: 1fr;
        overflow-x: hidden;
        & > .quote-board--header { text-style: bold; color: $text-muted; }
        & > .quote-board--cursor {
            background: $block-cursor-blurred-background;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .quote-board--cursor {
            background: $block-cursor-background;
            text-style: $block-cursor-text-style;
        }
        & > .quote-board--symbol { text-style: bold; }
        & > .quote-board--muted { color: $text-muted; }
        & > .quote-board--up { color: $success; }
        & > .quote-board--down { color: $error; }
        & > .quote-board--up-flash { color: $text; background: $success 45%; text-style: bold; }
        & > .quote-board--down-flash { color: $text; background: $error 45%; text-style: bold; }
        /* NO_COLOR: greys cannot say up or down, but a moved price still stands out. */
        &:nocolor > .quote-board--up-flash, &:nocolor > .quote-board--down-flash {
            text-style: bold reverse;
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "quote-board--header",
        "quote-board--cursor",
        "quote-board--symbol",
        "quote-board--muted",
        "quote-board--up",
        "quote-board--down",
        "quote-board--up-flash",
        "quote-board--down-flash",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "up", "cursor_up", "Up", show=False, id="quotes.up", tooltip="Select the row above"
        ),
        Binding(
            "down",
            "cursor_down",
            "Down",
            show=False,
            id="quotes.down",
            tooltip="Select the row below",
        ),
        Binding(
            "pageup", "page_up", "Page up", show=False, id="quotes.page_up", tooltip="Up one page"
        ),
        Binding(
            "pagedown",
            "page_down",
            "Page down",
            show=False,
            id="quotes.page_down",
            tooltip="Down one page",
        ),
        Binding("home", "first", "First", show=False, id="quotes.first", tooltip="First symbol"),
        Binding("end", "last", "Last", show=False, id="quotes.last", tooltip="Last symbol"),
    ]

    selected_symbol: reactive[str | None] = reactive(None)
    """The symbol under the cursor; assign a known symbol to move the cursor there."""

    class SymbolSelected(Message):
        """The cursor moved to ``symbol``."""

        def __init__(self, symbol: str, *, board: QuoteBoard | None = None) -> None:
            super().__init__()
            self.symbol = symbol
            self.board = board

        @property
        def control(self) -> QuoteBoard | None:
            return self.board

    def __init__(
        self,
        symbols: list[str],
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: list[_Row] = []
        self._index: dict[str, int] = {}
        self._cursor: int | None = None
        self._flashing: set[int] = set()
        self._styles: dict[tuple[str, bool], Style] = {}
        self._layouts: dict[int, tuple[Column, ...]] = {}
        self._header: tuple[int, Strip] | None = None
        for symbol in dict.fromkeys(symbols):
            self._add(symbol)

    # -- data -------------------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """Row order: the watchlist, then symbols seen later."""
        return [row.symbol for row in self._rows]

    def snapshot_of(self, symbol: str) -> SymbolSnapshot | None:
        """The latest snapshot shown for ``symbol`` (what a buy/sell ticket prefills from)."""
        row = self._index.get(symbol)
        return None if row is None else self._rows[row].snap

    def _add(self, symbol: str) -> int:
        row = len(self._rows)
        self._rows.append(_Row(symbol))
        self._index[symbol] = row
        self.virtual_size = Size(self._full_width(), row + 2)
        return row

    def apply(self, snapshot: EngineSnapshot) -> None:
        """Take the symbols that changed; repaint their rows and the rows whose flash fades now."""
        faded = self._flashing
        if not snapshot.quotes and not faded:
            return
        flashing: set[int] = set()
        touched: set[int] = set()
        index = self._index
        rows = self._rows
        for snap in snapshot.quotes:
            row = index.get(snap.symbol)
            if row is None:
                row = self._add(snap.symbol)
            if rows[row].update(snap):
                flashing.add(row)
            touched.add(row)
        for row in faded - touched:
            rows[row].flash = 0
        self._flashing = flashing
        self._repaint(touched | faded)
        if self.selected_symbol is None and rows:
            self.selected_symbol = rows[0].symbol

    def _repaint(self, dirty: set[int]) -> None:
        """Mark the visible rows in ``dirty`` for repaint, one region per run of adjacent rows."""
        top = round(self.scroll_offset.y)
        bottom = top + self.size.height - 1
        visible = [row for row in sorted(dirty) if top <= row < bottom]
        start = previous = None
        for row in visible:
            if start is None:
                start = previous = row
            elif row == previous + 1:
                previous = row
            else:
                self.refresh_lines(start + 1, previous - start + 1)
                start = previous = row
        if start is not None:
            self.refresh_lines(start + 1, previous - start + 1)

    # -- selection --------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._rows and self.selected_symbol is None:
            self.selected_symbol = self._rows[0].symbol

    def validate_selected_symbol(self, symbol: str | None) -> str | None:
        if symbol is None or symbol in self._index:
            return symbol
        return self.selected_symbol

    def watch_selected_symbol(self, old: str | None, new: str | None) -> None:
        previous = self._cursor
        self._cursor = None if new is None else self._index[new]
        for row in (previous, self._cursor):
            if row is not None:
                self.refresh_line(row + 1)
        if self._cursor is not None:
            self._reveal(self._cursor)
        if new is not None:
            self.post_message(self.SymbolSelected(new, board=self))

    def _page(self) -> int:
        return max(1, self.size.height - 1)

    def _reveal(self, row: int) -> None:
        top = round(self.scroll_offset.y)
        page = self._page()
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False)

    def _select(self, row: int) -> None:
        if self._rows:
            self.selected_symbol = self._rows[max(0, min(row, len(self._rows) - 1))].symbol

    def _at(self, offset: int) -> int:
        return (self._cursor if self._cursor is not None else 0) + offset

    def action_cursor_up(self) -> None:
        self._select(self._at(-1))

    def action_cursor_down(self) -> None:
        self._select(self._at(1))

    def action_page_up(self) -> None:
        self._select(self._at(-self._page()))

    def action_page_down(self) -> None:
        self._select(self._at(self._page()))

    def action_first(self) -> None:
        self._select(0)

    def action_last(self) -> None:
        self._select(len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self._select(round(self.scroll_offset.y) + offset.y - 1)

    # -- rendering --------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        # Theme, focus and CSS changes land here: every cached strip is stale.
        super().notify_style_update()
        self._styles.clear()
        self._header = None
        for row in self._rows:
            row.key = None

    def _style(self, role: str, cursor: bool) -> Style:
        key = (role, cursor)
        style = self._styles.get(key)
        if style is None:
            # Non-partial styles: alpha colours ($success 45%) blend over the real background.
            style = self.get_component_rich_style(role) if role else self.rich_style
            if cursor and not role.endswith("-flash"):
                # Textual merges component classes without their backgrounds, so lay the
                # cursor's background under the cell's colour here.
                bar = self.get_component_rich_style("quote-board--cursor")
                style += Style(bgcolor=bar.bgcolor, bold=bar.bold or None)
            self._styles[key] = style
        return style

    def _full_width(self) -> int:
        return sum(c.width for c in COLUMNS) + GAP * (len(COLUMNS) - 1)

    def _layout(self, width: int) -> tuple[Column, ...]:
        layout = self._layouts.get(width)
        if layout is None:
            layout = self._layouts[width] = fit_columns(COLUMNS, width, GAP)
        return layout

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            if self._header is None or self._header[0] != width:
                text = header_line(self._layout(width), GAP)
                strip = Strip([Segment(text, self._style("quote-board--header", False))])
                self._header = (width, strip.adjust_cell_length(width, self.rich_style))
            return self._header[1]
        row = round(self.scroll_offset.y) + y - 1
        if row >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        state = self._rows[row]
        key = (state.version, width, row == self._cursor, state.flash)
        if state.key != key or state.strip is None:
            state.strip = self.render_row(row, width)
            state.key = key
        return state.strip

    def render_row(self, row: int, width: int) -> Strip:
        """Build one row's strip (uncached; ``render_line`` caches it)."""
        state = self._rows[row]
        snap = state.snap
        cursor = row == self._cursor
        plain = self._style("", cursor)
        gap = Segment(" " * GAP, plain)
        segments: list[Segment] = []
        used = 0
        for column in self._layout(width):
            if segments:
                segments.append(gap)
                used += GAP
            text, role = self._cell(column.key, state, snap)
            style = self._style(role, cursor) if role else plain
            segments.append(Segment(column.place(text), style))
            used += column.width
        if used > width:
            return Strip(segments, used).crop(0, width)
        segments.append(Segment(" " * (width - used), plain))
        return Strip(segments, width)

    @staticmethod
    def _tick_role(direction: int, flashed: bool) -> str:
        if direction > 0:
            return "quote-board--up-flash" if flashed else "quote-board--up"
        if direction < 0:
            return "quote-board--down-flash" if flashed else "quote-board--down"
        return ""

    def _cell(self, key: str, state: _Row, snap: SymbolSnapshot | None) -> tuple[str, str]:
        """The text and component class of one cell."""
        if key == "symbol":
            return state.symbol, "quote-board--symbol"
        if snap is None:
            return ("", "") if key == "trend" else (NA, "quote-board--muted")
        match key:
            case "bid":
                return fmt_price(snap.bid), self._tick_role(state.bid_dir, bool(state.flash & BID))
            case "ask":
                return fmt_price(snap.ask), self._tick_role(state.ask_dir, bool(state.flash & ASK))
            case "last":
                return fmt_price(snap.last), self._tick_role(
                    state.last_dir, bool(state.flash & LAST)
                )
            case "change":
                change = snap.change_pct
                return fmt_pct(change), self._sign_role(change)
            case "volume":
                return fmt_volume(snap.volume), ""
            case "spread":
                return fmt_price(snap.spread, grid_of=snap.bid), "quote-board--muted"
            case _:
                return state.spark, self._sign_role(snap.change_pct)

    @staticmethod
    def _sign_role(value: Decimal | None) -> str:
        if not value:
            return "quote-board--muted"
        return "quote-board--up" if value > 0 else "quote-board--down"
