"""The intraday chart of one symbol: one-minute candles, or a line where candles would not fit.

Drawn here with box and block characters, at half-cell vertical resolution: a
candle is a wick (│, or ╵ ╷ for half a cell) and a body (█, or ▀ ▄ for half a
cell), coloured by direction. Prices label the y axis; New York times the x axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from textual.content import Content
from textual.widget import Widget

from engine.client import EngineClient, EngineSnapshot
from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.core.models import Bar
from tui.widgets.format import DOWN, MUTED, UP, fmt_pct, fmt_price, fmt_time, sign_style

CANDLES_MIN_WIDTH = 20  # plot columns; narrower than this draws a line
CANDLES_MIN_HEIGHT = 4  # plot rows
LABEL_EVERY = 4  # rows between y-axis labels
TIME_LABEL_GAP = 3  # cells between x-axis labels
_HALF = Decimal("0.5")

_Grid = list[list[tuple[str, str]]]  # (char, style) per plot cell


@dataclass(slots=True, frozen=True)
class Candle:
    """One drawn column: a bar, or several consecutive bars merged to fit the width."""

    ts_ns: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal

    @property
    def up(self) -> bool:
        return self.close >= self.open


def candles(bars: Sequence[Bar], columns: int) -> list[Candle]:
    """Merge consecutive bars so that at most ``columns`` candles remain (first open, last close)."""
    per = max(1, -(-len(bars) // max(1, columns)))
    merged = []
    for start in range(0, len(bars), per):
        group = bars[start : start + per]
        merged.append(
            Candle(
                group[0].ts_ns,
                group[0].open,
                max(b.high for b in group),
                min(b.low for b in group),
                group[-1].close,
            )
        )
    return merged


class _Scale:
    """Prices to half-cell levels: 0 is the bottom half of the bottom row."""

    def __init__(self, low: Decimal, high: Decimal, rows: int) -> None:
        self.low = low
        self.span = high - low
        self.top = 2 * rows - 1

    def level(self, price: Decimal) -> int:
        if not self.span:
            return self.top // 2
        exact = (price - self.low) * self.top / self.span
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def price_at_row(self, row: int, rows: int) -> Decimal:
        """The price at the middle of plot row ``row`` (0 is the top row)."""
        if not self.span:
            return self.low
        middle = Decimal(2 * (rows - 1 - row)) + _HALF
        return self.low + middle * self.span / self.top


def _candle_glyph(lower: int, candle_levels: tuple[int, int, int, int]) -> str:
    """The character for the cell whose bottom half is level ``lower``."""
    wick_low, wick_high, body_low, body_high = candle_levels
    upper = lower + 1
    body_lower = body_low <= lower <= body_high
    body_upper = body_low <= upper <= body_high
    if body_lower and body_upper:
        return "█"
    if body_upper:
        return "▀"
    if body_lower:
        return "▄"
    wick_lower = wick_low <= lower <= wick_high
    wick_upper = wick_low <= upper <= wick_high
    if wick_lower and wick_upper:
        return "│"
    if wick_upper:
        return "╵"
    if wick_lower:
        return "╷"
    return " "


def _line(cells: Sequence[tuple[str, str]]) -> Content:
    """A Content line from per-cell ``(char, style)``, merging runs of one style."""
    runs: list[tuple[str, str]] = []
    for char, style in cells:
        if runs and runs[-1][1] == style:
            runs[-1] = (runs[-1][0] + char, style)
        else:
            runs.append((char, style))
    return Content.assemble(*runs)


def chart_title(
    symbol: str,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    change: Decimal | None,
    width: int,
    bar_size: str = "1m",
) -> Content:
    """``AAPL 172.50 +0.32%  1m O 171.94 H 172.88 L 171.80`` cut to ``width`` a whole field at
    a time: the symbol, last price and change come first, then the bar size, open, high, low."""
    title = Content.assemble(
        (symbol, "bold"),
        " ",
        (fmt_price(close), "bold"),
        " ",
        (fmt_pct(change), sign_style(change)),
    )
    extras = [
        Content.styled(f"  {bar_size}", MUTED),
        Content.assemble((" O ", MUTED), fmt_price(open_)),
        Content.assemble((" H ", MUTED), fmt_price(high)),
        Content.assemble((" L ", MUTED), fmt_price(low)),
    ]
    for extra in extras:
        if title.cell_length + extra.cell_length > width:
            break
        title += extra
    return title


def draw_chart(
    symbol: str, bars: Sequence[Bar], width: int, height: int, *, daily: bool = False
) -> list[Content]:
    """The chart as ``height`` lines: a title, the plot with its y axis, then the x-axis times
    (dates for ``daily`` bars)."""
    if not bars:
        empty = "no daily history yet (it backfills at start)" if daily else "no bars yet today"
        return [Content.styled(f"{symbol}: {empty}", MUTED)]
    first, last = bars[0], bars[-1]
    low, high = min(b.low for b in bars), max(b.high for b in bars)
    change = (last.close - first.open) / first.open * 100 if first.open else None
    bar_size = "1D" if daily else "1m"
    title = chart_title(symbol, first.open, high, low, last.close, change, width, bar_size)
    rows = height - 2
    label_width = max(len(fmt_price(low)), len(fmt_price(high)))
    plot_width = width - label_width - 1
    if rows < 1 or plot_width < 1:
        return [title]
    scale = _Scale(low, high, rows)
    drawn = candles(bars, plot_width)
    if plot_width >= CANDLES_MIN_WIDTH and rows >= CANDLES_MIN_HEIGHT:
        # Room to spare: a gap before each candle keeps bodies apart and off the axis.
        stride = 2 if len(drawn) * 2 <= plot_width else 1
        grid = _plot_candles(drawn, scale, rows, plot_width, stride)
    else:
        stride = 1
        grid = _plot_line(drawn, scale, rows, plot_width, sign_style(last.close - first.open))
    lines = [title]
    for row in range(rows):
        labelled = row == 0 or row == rows - 1 or (row % LABEL_EVERY == 0 and row < rows - 2)
        label = fmt_price(scale.price_at_row(row, rows), label_width) if labelled else ""
        axis = [(label.rjust(label_width), MUTED), ("┤" if labelled else "│", MUTED)]
        lines.append(_line(axis + grid[row]))
    lines.append(_time_axis(drawn, stride, label_width + 1, plot_width, daily=daily))
    return lines


def _column(index: int, stride: int) -> int:
    """The plot column of candle ``index``: with two cells per candle, the gap comes first."""
    return index * stride + stride - 1


def _plot_candles(
    drawn: Sequence[Candle], scale: _Scale, rows: int, width: int, stride: int
) -> _Grid:
    grid = [[(" ", "")] * width for _ in range(rows)]
    for index, candle in enumerate(drawn):
        levels = (
            scale.level(candle.low),
            scale.level(candle.high),
            scale.level(min(candle.open, candle.close)),
            scale.level(max(candle.open, candle.close)),
        )
        style = UP if candle.up else DOWN
        for row in range(rows):
            glyph = _candle_glyph(2 * (rows - 1 - row), levels)
            if glyph != " ":
                grid[row][_column(index, stride)] = (glyph, style)
    return grid


def _plot_line(drawn: Sequence[Candle], scale: _Scale, rows: int, width: int, style: str) -> _Grid:
    """Each close as a half-cell dot, coloured by the day's direction."""
    grid = [[(" ", "")] * width for _ in range(rows)]
    for index, candle in enumerate(drawn):
        level = scale.level(candle.close)
        grid[rows - 1 - level // 2][index] = ("▀" if level % 2 else "▄", style)
    return grid


def _time_axis(
    drawn: Sequence[Candle], stride: int, indent: int, plot_width: int, *, daily: bool = False
) -> Content:
    text = [" "] * plot_width
    free = 0
    for index, candle in enumerate(drawn):
        column = _column(index, stride)
        if daily:
            label = ns_to_datetime(candle.ts_ns, NEW_YORK).strftime("%m-%d")
        else:
            label = fmt_time(candle.ts_ns, seconds=False)
        if column >= free and column + len(label) <= plot_width:
            text[column : column + len(label)] = label
            free = column + len(label) + TIME_LABEL_GAP
    return Content.styled(" " * indent + "".join(text).rstrip(), MUTED)


class Chart(Widget):
    """Today's one-minute candles for one symbol, reloaded when a new minute bar arrives; or,
    with ``daily`` set, its backfilled daily history (``EngineClient.history``)."""

    DEFAULT_CSS = """
    Chart {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    # Per-instance state (assigned on the instance); these are the initial values.
    _symbol: str | None = None
    _bars: tuple[Bar, ...] = ()
    _client: EngineClient | None = None
    _wanted: str | None = None
    _seen: tuple[int, Decimal | None] | None = None
    daily = False

    @property
    def symbol(self) -> str | None:
        """The symbol drawn now (None before the first ``show``)."""
        return self._symbol

    async def show(self, client: EngineClient, symbol: str) -> None:
        """Load ``symbol``'s bars from the engine and draw them."""
        self._client = client
        self._wanted = symbol
        if symbol != self._symbol:
            self._seen = None
        try:
            bars = await (client.history if self.daily else client.bars)(symbol)
            # A newer request may have finished first while this one waited.
            if self._wanted == symbol:
                self.set_bars(symbol, bars)
        finally:
            if self._wanted == symbol:
                self._wanted = None

    def set_bars(self, symbol: str, bars: Sequence[Bar]) -> None:
        """Draw ``bars`` (one-minute, oldest first) for ``symbol``."""
        self._symbol = symbol
        self._bars = tuple(bars)
        self.refresh()

    def apply(self, snapshot: EngineSnapshot) -> None:
        """Reload when the shown symbol's minute closes change (a new bar has arrived)."""
        client, symbol = self._client, self._symbol
        if client is None or symbol is None or self._wanted is not None:
            return
        for snap in snapshot.quotes:
            if snap.symbol == symbol:
                closes = snap.closes
                seen = (len(closes), closes[-1] if closes else None)
                if seen != self._seen:
                    self._seen = seen
                    self.run_worker(self.show(client, symbol), group="chart", exclusive=True)
                return

    def render(self) -> Content:
        if self._symbol is None:
            return Content.styled("select a symbol to chart it", MUTED)
        return Content("\n").join(
            draw_chart(
                self._symbol, self._bars, self.size.width, self.size.height, daily=self.daily
            )
        )
