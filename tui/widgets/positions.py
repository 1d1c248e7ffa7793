"""Positions: quantity, average cost, mark and P&L per symbol, totals, exposure and account."""

from __future__ import annotations

from decimal import Decimal

from textual.content import Content
from textual.widget import Widget

from engine.client import BookSnapshot, EngineSnapshot
from engine.core.prices import ZERO
from tui.widgets.format import (
    MUTED,
    Column,
    fit_columns,
    fmt_money,
    fmt_price,
    fmt_qty,
    header_content,
    labelled,
    pack,
    row_content,
    sign_style,
)

COLUMNS = (
    Column("symbol", "SYMBOL", 6, left=True),
    Column("qty", "QTY", 8),
    Column("avg", "AVG COST", 9, drop=3),
    Column("last", "LAST", 9, drop=2),
    Column("unrealized", "UNRL P&L", 12),
    Column("realized", "REAL P&L", 12, drop=1),
)


class PositionsPane(Widget):
    """One row per position (flat ones too, for their realized P&L), a totals row, then
    day P&L, gross and net exposure, cash, equity and buying power.

    Repaints only when a position, the account or the exposure changed.
    """

    DEFAULT_CSS = """
    PositionsPane {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    # Per-instance state (assigned on the instance); these are the initial values.
    _book: BookSnapshot | None = None
    _shown: tuple[object, ...] = ()

    def apply(self, snapshot: EngineSnapshot) -> None:
        """Take the book, if the pull carries one; repaint only when what is shown changed."""
        book = snapshot.book
        if book is None:
            return
        # Orders are not shown here: leave them out of the comparison.
        shown = (
            book.positions,
            book.account,
            book.day_pnl,
            book.gross_exposure,
            book.net_exposure,
        )
        if shown == self._shown:
            return
        self._book = book
        self._shown = shown
        self.refresh()

    def render(self) -> Content:
        book = self._book
        if book is None:
            return Content.styled("waiting for the book", MUTED)
        columns = fit_columns(COLUMNS, self.size.width)
        lines = [header_content(columns)]
        unrealized = realized = ZERO
        for position in sorted(book.positions, key=lambda p: p.symbol):
            unrealized += position.unrealized_pnl
            realized += position.realized_pnl
            lines.append(
                self._row(
                    columns,
                    {
                        "symbol": (position.symbol, "bold"),
                        "qty": (fmt_qty(position.qty), sign_style(position.qty)),
                        "avg": (fmt_price(position.avg_cost) if position.qty else "", ""),
                        "last": (fmt_price(position.last_price), ""),
                        "unrealized": self._pnl(position.unrealized_pnl),
                        "realized": self._pnl(position.realized_pnl),
                    },
                )
            )
        if not book.positions:
            lines.append(Content.styled("no positions", MUTED))
        lines.append(
            self._row(
                columns,
                {
                    "symbol": ("TOTAL", f"bold {MUTED}"),
                    "unrealized": self._pnl(unrealized, bold=True),
                    "realized": self._pnl(realized, bold=True),
                },
            )
        )
        account = book.account
        summary = [
            labelled("day P&L", fmt_money(book.day_pnl, signed=True), sign_style(book.day_pnl)),
            labelled("gross", fmt_money(book.gross_exposure)),
            labelled("net", fmt_money(book.net_exposure, signed=True)),
            labelled("cash", fmt_money(account.cash)),
            labelled("equity", fmt_money(account.equity)),
            labelled("buying power", fmt_money(account.buying_power)),
        ]
        lines.extend(pack(summary, self.size.width))
        return Content("\n").join(lines)

    @staticmethod
    def _pnl(amount: Decimal, *, bold: bool = False) -> tuple[str, str]:
        style = sign_style(amount)
        return fmt_money(amount, signed=True), f"bold {style}" if bold else style

    @staticmethod
    def _row(columns: tuple[Column, ...], cells: dict[str, tuple[str, str]]) -> Content:
        return row_content([(c, *cells.get(c.key, ("", ""))) for c in columns])
