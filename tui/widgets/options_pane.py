"""The option chain of the selected symbol: one expiry at a time, calls left and puts right.

Each strike is one row: the call's columns mirrored on the left (bid and ask next to
the strike), the strike in the middle, the put's columns on the right. The at-the-money
strike (nearest spot) is highlighted and the rows shown are the ones around it. Under
the table a smile plot draws the expiry's market implied vols as dots and the SVI fit as
a line, in braille (2x4 dots a cell).

The pane pulls from the engine only while it is shown: on every pull of the main
screen it asks for the chain and redraws only when the chain's version moved. The SVI
smile is refitted when the expiry changes and otherwise at most every ``SMILE_EVERY_S``
engine seconds (a fit costs far more than a redraw).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import ClassVar

import numpy as np
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widget import Widget

from engine.client import ChainSnapshot, EngineClient, EngineSnapshot, SmileSnapshot
from engine.core.clock import NEW_YORK, NS_PER_SECOND
from engine.options.chain import ContractView
from tui.widgets.format import MUTED, NA, Column, fit_columns

SMILE_EVERY_S = 2  # engine seconds between refits of the shown expiry's smile
SMILE_ROWS = 8  # plot rows under the table, when the pane has room
SMILE_FROM_HEIGHT = 20  # pane rows needed before the smile plot is drawn
STRIKE = Column("strike", "STRIKE", 8)
GAP = 1
CALENDAR_DAYS = 365.0
VOL_POINT = 0.01
ATM_STYLE = "bold reverse $text-accent"
FIT_STYLE = "$text-primary"
MARKET_STYLE = "bold $text-warning"

# One side's columns, nearest the strike first; the calls mirror them.
SIDE_COLUMNS = (
    Column("bid", "BID", 7),
    Column("ask", "ASK", 7),
    Column("iv", "IV%", 6, drop=1),
    Column("delta", "DELTA", 6, drop=2),
    Column("edge", "EDGE", 6, drop=3),
    Column("theo", "THEO", 7, drop=4),
    Column("mid", "MID", 7, drop=5),
    Column("vega", "VEGA", 6, drop=6),
    Column("theta", "THETA", 6, drop=7),
    Column("gamma", "GAMMA", 6, drop=8),
)

# Braille dot bits by (column in the cell, row in the cell from the top).
_BRAILLE_BASE = 0x2800
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def _number(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else NA


def cell_text(view: ContractView, key: str) -> str:
    """How column ``key`` shows a contract: prices to the cent, IV in percent, delta and gamma
    per share, theta in $ per share per calendar day, vega in $ per share per vol point."""
    match key:
        case "bid" | "ask" | "mid" | "theo":
            return _number(getattr(view, key), ".2f")
        case "edge":
            return _number(view.edge, "+.2f")
        case "iv":
            return _number(view.iv * 100, ".1f")
        case "delta":
            return _number(view.delta, ".3f")
        case "gamma":
            return _number(view.gamma, ".4f")
        case "theta":
            return _number(view.theta / CALENDAR_DAYS, ".3f")
        case "vega":
            return _number(view.vega * VOL_POINT, ".3f")
    raise KeyError(key)


def _cell_style(view: ContractView, key: str) -> str:
    if key == "edge" and math.isfinite(view.edge) and abs(view.edge) >= 0.005:
        return "$success" if view.edge > 0 else "$error"
    return ""


def strike_rows(views: Sequence[ContractView]) -> list[tuple[float, ContractView, ContractView]]:
    """``(strike, call, put)`` per strike of one expiry (views strike-major, call first)."""
    rows = []
    for call, put in zip(views[0::2], views[1::2], strict=True):
        rows.append((float(call.contract.symbol.strike), call, put))
    return rows


def atm_index(strikes: Sequence[float], spot: float) -> int:
    """The row of the strike nearest ``spot`` (the lower one on a tie)."""
    return min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot), strikes[i]))


def chain_date(chain: ChainSnapshot) -> date:
    """The New York date the chain was last priced on."""
    return datetime.fromtimestamp(chain.ts_ns / NS_PER_SECOND, tz=NEW_YORK).date()


def default_expiry(chain: ChainSnapshot) -> date | None:
    """The nearest expiry after the chain's day (one expiring today is mostly intrinsic)."""
    today = chain_date(chain)
    later = [expiry for expiry in chain.expiries if expiry > today]
    return later[0] if later else (chain.expiries[0] if chain.expiries else None)


def _strike_text(strike: float) -> str:
    return f"{strike:.2f}".rstrip("0").rstrip(".") if strike % 1 else f"{strike:.0f}"


def braille_plot(
    smile: SmileSnapshot, width: int, height: int
) -> list[list[tuple[str, str]]] | None:
    """The smile as ``height`` rows of ``width`` ``(char, style)`` cells; None without room.

    x is log-moneyness across the quoted range, y is vol from the lowest to the highest of
    the market and fitted vols. The fit is a line through every dot column (interpolated
    between quoted points); market vols are single dots whose cells take ``MARKET_STYLE``.
    """
    if width < 4 or height < 2 or len(smile.k) < 2:
        return None
    k = np.asarray(smile.k)
    order = np.argsort(k)
    k, market, fitted = (
        k[order],
        np.asarray(smile.market_vol)[order],
        np.asarray(smile.fitted_vol)[order],
    )
    low = float(min(market.min(), fitted.min()))
    high = float(max(market.max(), fitted.max()))
    span_k = float(k[-1] - k[0]) or 1.0
    span_v = (high - low) or 1.0
    dots_x, dots_y = 2 * width, 4 * height
    bits = [[0] * width for _ in range(height)]
    market_cells: set[tuple[int, int]] = set()

    def dot(x: int, vol: float) -> tuple[int, int]:
        y = dots_y - 1 - round((vol - low) / span_v * (dots_y - 1))
        row, column = y // 4, x // 2
        bits[row][column] |= _DOTS[x % 2][y % 4]
        return row, column

    line = np.interp(k[0] + np.arange(dots_x) / (dots_x - 1) * span_k, k, fitted)
    for x, vol in enumerate(line):
        dot(x, float(vol))
    for point, vol in zip(k, market, strict=True):
        x = round((point - k[0]) / span_k * (dots_x - 1))
        market_cells.add(dot(x, float(vol)))
    return [
        [
            (
                chr(_BRAILLE_BASE + bits[row][column]) if bits[row][column] else " ",
                MARKET_STYLE if (row, column) in market_cells else FIT_STYLE,
            )
            for column in range(width)
        ]
        for row in range(height)
    ]


def _runs(cells: Sequence[tuple[str, str]]) -> Content:
    """A Content line from per-cell ``(char, style)``, merging runs of one style."""
    runs: list[tuple[str, str]] = []
    for char, style in cells:
        if runs and runs[-1][1] == style:
            runs[-1] = (runs[-1][0] + char, style)
        else:
            runs.append((char, style))
    return Content.assemble(*runs)


class OptionsPane(Widget, can_focus=True):
    """One expiry of the selected symbol's option chain, with greeks, edge and its smile."""

    DEFAULT_CSS = """
    OptionsPane {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "left_square_bracket,ctrl+left",
            "expiry(-1)",
            "Prev expiry",
            id="options.previous_expiry",
            tooltip="Show the previous (nearer) expiry of the chain",
        ),
        Binding(
            "right_square_bracket,ctrl+right",
            "expiry(1)",
            "Next expiry",
            id="options.next_expiry",
            tooltip="Show the next (further) expiry of the chain",
        ),
    ]

    # Per-instance state (assigned on the instance); these are the initial values.
    _client: EngineClient | None = None
    _symbol: str | None = None
    _chain: ChainSnapshot | None = None
    _missing: str = ""
    _expiry: date | None = None
    _smile: SmileSnapshot | None = None
    _smile_of: tuple[str, date] | None = None
    _smile_ts: int = 0
    _polling: bool = False

    @property
    def symbol(self) -> str | None:
        """The underlying shown (None before the first ``show``)."""
        return self._symbol

    @property
    def expiry(self) -> date | None:
        """The expiry shown (None until a chain with expiries has arrived)."""
        return self._expiry

    @property
    def chain(self) -> ChainSnapshot | None:
        """The chain drawn now."""
        return self._chain

    @property
    def smile(self) -> SmileSnapshot | None:
        """The smile drawn under the table, when the expiry has one."""
        return self._smile

    async def show(self, client: EngineClient, symbol: str) -> None:
        """Show ``symbol``'s chain (built by the engine on this first request), nearest expiry."""
        self._client = client
        if symbol != self._symbol:
            self._symbol = symbol
            self._chain = None
            self._expiry = None
            self._smile = self._smile_of = None
        await self.poll()

    async def poll(self) -> None:
        """Fetch the chain; redraw only if its version moved (refit the smile when due)."""
        client, symbol = self._client, self._symbol
        if client is None or symbol is None or self._polling:
            return
        self._polling = True
        try:
            chain = await client.option_chain(symbol)
            if symbol != self._symbol:
                return
            if chain is None:
                missing = f"{symbol} is not traded here"
                if self._chain is not None or self._missing != missing:
                    self._chain, self._missing = None, missing
                    self.refresh()
                return
            shown = self._chain
            if (
                shown is not None
                and shown.version == chain.version
                and shown.reason == chain.reason
            ):
                return
            self._chain = chain
            if self._expiry not in chain.expiries:
                self._expiry = default_expiry(chain)
            await self._refit(client, chain)
            self.refresh()
        finally:
            self._polling = False

    async def _refit(self, client: EngineClient, chain: ChainSnapshot) -> None:
        expiry = self._expiry
        if expiry is None:
            self._smile = self._smile_of = None
            return
        key = (chain.underlying, expiry)
        due = chain.ts_ns - self._smile_ts >= SMILE_EVERY_S * NS_PER_SECOND
        if key == self._smile_of and not due:
            return
        self._smile = await client.option_smile(chain.underlying, expiry)
        self._smile_of = key
        self._smile_ts = chain.ts_ns

    def apply(self, snapshot: EngineSnapshot) -> None:
        """On every pull while shown: look for a repriced chain (the engine's pull timer)."""
        if self.display and self._client is not None and not self._polling:
            self.run_worker(self.poll(), group="options", exclusive=True)

    async def action_expiry(self, step: int) -> None:
        """Move ``step`` expiries further out (negative: nearer), stopping at either end."""
        chain, client = self._chain, self._client
        if chain is None or client is None or not chain.expiries or self._expiry is None:
            return
        index = chain.expiries.index(self._expiry) + step
        index = max(0, min(index, len(chain.expiries) - 1))
        if chain.expiries[index] == self._expiry:
            return
        self._expiry = chain.expiries[index]
        await self._refit(client, chain)
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------

    def render(self) -> Content:
        chain = self._chain
        if self._symbol is None:
            return Content.styled("select a symbol to see its option chain", MUTED)
        if chain is None:
            return Content.styled(self._missing or f"loading the {self._symbol} chain…", MUTED)
        if chain.reason:
            return Content.styled(f"{chain.underlying}: {chain.reason}", MUTED)
        if self._expiry is None:
            return Content.styled(f"{chain.underlying}: the chain lists no contracts", MUTED)
        width, height = self.size.width, self.size.height
        plot_rows = SMILE_ROWS if height >= SMILE_FROM_HEIGHT else 0
        lines = [self._title(chain, self._expiry)]
        lines += self._table(
            chain, self._expiry, width, height - 1 - (plot_rows + 1 if plot_rows else 0)
        )
        if plot_rows:
            lines += self._smile_lines(width, plot_rows)
        return Content("\n").join(lines)

    def _title(self, chain: ChainSnapshot, expiry: date) -> Content:
        today = chain_date(chain)
        index = chain.expiries.index(expiry) + 1
        return Content.assemble(
            (chain.underlying, "bold"),
            " ",
            f"{chain.spot:.2f}",
            ("  exp ", MUTED),
            (expiry.isoformat(), "bold"),
            (f" ({(expiry - today).days}d)", MUTED),
            (f"  {index}/{len(chain.expiries)}", MUTED),
            ("  [ ] expiry", MUTED),
        )

    def _table(self, chain: ChainSnapshot, expiry: date, width: int, rows: int) -> list[Content]:
        side_width = (width - STRIKE.width - 2 * GAP) // 2
        kept = fit_columns(SIDE_COLUMNS, side_width, GAP)
        calls = tuple(reversed(kept))
        header = Content.assemble(
            (self._header(calls), f"bold {MUTED}"),
            (" " * GAP, ""),
            (STRIKE.place(STRIKE.title), f"bold {MUTED}"),
            (" " * GAP, ""),
            (self._header(kept), f"bold {MUTED}"),
        )
        label = Content.assemble(
            ("CALLS".center(self._span(calls)), "bold"),
            " " * (STRIKE.width + 2 * GAP),
            ("PUTS".center(self._span(kept)), "bold"),
        )
        strikes = strike_rows(chain.expiry(expiry))
        if not strikes or rows < 3:
            return [label, header][: max(rows, 0)]
        atm = atm_index([s for s, _, _ in strikes], chain.spot)
        room = rows - 2
        first = max(0, min(atm - room // 2, len(strikes) - room))
        lines = [label, header]
        for i in range(first, min(first + room, len(strikes))):
            strike, call, put = strikes[i]
            strike_style = ATM_STYLE if i == atm else "bold"
            lines.append(
                Content(" " * GAP).join(
                    [
                        self._side(call, calls),
                        Content.styled(STRIKE.place(_strike_text(strike)), strike_style),
                        self._side(put, kept),
                    ]
                )
            )
        return lines

    @staticmethod
    def _span(columns: Sequence[Column]) -> int:
        return sum(c.width for c in columns) + GAP * (len(columns) - 1)

    @staticmethod
    def _header(columns: Sequence[Column]) -> str:
        return (" " * GAP).join(c.place(c.title) for c in columns)

    @staticmethod
    def _side(view: ContractView, columns: Sequence[Column]) -> Content:
        return Content(" " * GAP).join(
            Content.styled(c.place(cell_text(view, c.key)), _cell_style(view, c.key))
            for c in columns
        )

    def _smile_lines(self, width: int, rows: int) -> list[Content]:
        smile = self._smile
        if smile is None:
            return [Content.styled("smile: too few out-of-the-money quotes to fit", MUTED)]
        caption = Content.assemble(
            ("SMILE ", f"bold {MUTED}"),
            ("● market IV ", MARKET_STYLE),
            ("─ SVI fit ", FIT_STYLE),
            (f"rmse {smile.rmse * 100:.2f} vol pts  x: ln(K/F)", MUTED),
        )
        vols = smile.market_vol + smile.fitted_vol
        high, low = f"{max(vols) * 100:.1f}%", f"{min(vols) * 100:.1f}%"
        label_width = max(len(high), len(low))
        grid = braille_plot(smile, width - label_width - 1, rows)
        if grid is None:
            return [caption]
        lines = [caption]
        for row, cells in enumerate(grid):
            label = high if row == 0 else low if row == rows - 1 else ""
            axis = [(label.rjust(label_width), MUTED), ("┤" if label else "│", MUTED)]
            lines.append(_runs(axis + cells))
        return lines
