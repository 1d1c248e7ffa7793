"""Positions, cash and P&L from fills, with average-cost accounting in exact Decimal.

Each position keeps its exact signed cost basis (Σ signed qty × price of the
shares still held) next to the ``Position`` record; ``avg_cost`` is that basis
divided by the quantity. Realized P&L is proceeds minus the basis of the shares
closed, so a round trip back to flat realizes exactly what the cash ledger
moved. Only the basis removed by a partial reduction involves a division; when
it does not come out exact it is rounded to 1e-12 dollars, so the ledger identity

    cash + Σ cost basis == starting cash + Σ realized P&L − Σ fees

holds exactly, always.

Quantities count units (shares, or option contracts) and prices are per share, so
every dollar figure here is qty x price x the symbol's contract multiplier (100 for
an option); ``avg_cost`` stays a per-share price, as a trader reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact

from engine.core.models import Fill, Position
from engine.core.prices import ONE, ZERO, contract_multiplier

# Wide enough that sums of price × qty never round; only divisions are quantized.
_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN)
BASIS_QUANTUM = Decimal("1e-12")


def _sign(value: Decimal) -> int:
    return (value > ZERO) - (value < ZERO)


class Portfolio:
    """Positions keyed by symbol, a cash ledger and the session's starting equity.

    A position that goes flat stays in the book with ``qty == 0``, so its
    realized P&L and fees survive until the portfolio is rebuilt.
    """

    def __init__(self, starting_cash: Decimal = ZERO) -> None:
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.session_start_equity = starting_cash
        self._positions: dict[str, Position] = {}
        self._basis: dict[str, Decimal] = {}

    # -- fills -----------------------------------------------------------------------------

    def apply_fill(self, fill: Fill) -> Position:
        """Book one execution: update the position, its P&L and cash; returns the position."""
        ctx = _CTX
        symbol = fill.symbol
        position = self._positions.get(symbol)
        if position is None:
            position = self._positions[symbol] = Position(symbol=symbol)
            self._basis[symbol] = ZERO
        qty = position.qty
        basis = self._basis[symbol]
        multiplier = contract_multiplier(symbol)
        price = ctx.multiply(fill.price, multiplier)  # dollars per unit held
        traded = ctx.multiply(fill.qty, price)
        signed = fill.qty if fill.side.sign > 0 else ctx.minus(fill.qty)
        cash_out = traded if signed > ZERO else ctx.minus(traded)
        held = _sign(qty)

        if held == 0 or held == _sign(signed):
            qty = ctx.add(qty, signed)
            basis = ctx.add(basis, cash_out)
        else:
            size = abs(qty)
            closed = min(fill.qty, size)
            if closed == size:
                removed = basis
            else:
                ctx.clear_flags()
                removed = ctx.divide(ctx.multiply(basis, closed), size)
                if ctx.flags[Inexact]:
                    # A repeating fraction: put it on a fixed grid so later sums stay exact.
                    removed = removed.quantize(BASIS_QUANTUM, context=ctx)
            proceeds = ctx.multiply(closed, price)
            # Long: sold `closed` for proceeds. Short: bought them back, paying proceeds.
            realized = (
                ctx.subtract(proceeds, removed)
                if held > 0
                else ctx.subtract(ctx.minus(removed), proceeds)
            )
            position.realized_pnl = ctx.add(position.realized_pnl, realized)
            qty = ctx.subtract(qty, closed) if held > 0 else ctx.add(qty, closed)
            basis = ZERO if qty == ZERO else ctx.subtract(basis, removed)
            remainder = fill.qty - closed
            if remainder > ZERO:
                # Crossed through zero: the rest opens a new position at the fill price.
                qty = remainder if signed > ZERO else ctx.minus(remainder)
                basis = ctx.multiply(qty, price)

        position.qty = qty
        # avg_cost is for display and risk: the default 28 significant digits are plenty.
        position.avg_cost = ZERO if qty == ZERO else basis / qty
        if multiplier != ONE:
            position.avg_cost /= multiplier
        position.fees = ctx.add(position.fees, fill.fee)
        self._basis[symbol] = basis
        self.cash = ctx.subtract(ctx.subtract(self.cash, cash_out), fill.fee)
        return position

    def replay(self, fills: Iterable[Fill]) -> None:
        """Apply fills in order (rebuilding a book from a journal)."""
        for fill in fills:
            self.apply_fill(fill)

    # -- marks and queries -----------------------------------------------------------------

    def mark(self, symbol: str, price: Decimal) -> None:
        """Set the price unrealized P&L and equity are measured at."""
        position = self._positions.get(symbol)
        if position is not None:
            position.last_price = price

    def position(self, symbol: str) -> Position | None:
        return self._positions.get(symbol)

    def positions(self) -> list[Position]:
        """Every position ever held this book, flat ones included, in first-fill order."""
        return list(self._positions.values())

    def qty(self, symbol: str) -> Decimal:
        position = self._positions.get(symbol)
        return ZERO if position is None else position.qty

    def cost_basis(self, symbol: str) -> Decimal:
        """The exact signed dollar cost of what is held (``qty × avg_cost × multiplier``, unrounded)."""
        return self._basis.get(symbol, ZERO)

    @staticmethod
    def _mark_of(position: Position, marks: Mapping[str, Decimal] | None) -> Decimal:
        if marks is not None:
            price = marks.get(position.symbol)
            if price is not None:
                return price
        if position.last_price is not None:
            return position.last_price
        return position.avg_cost

    def _value(self, position: Position, marks: Mapping[str, Decimal] | None) -> Decimal:
        """qty × mark × multiplier: the position's signed dollar value."""
        units = _CTX.multiply(position.qty, contract_multiplier(position.symbol))
        return _CTX.multiply(units, self._mark_of(position, marks))

    def market_value(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Σ qty × mark × multiplier. Marks come from ``marks``, else the last ``mark()``, else
        avg cost."""
        total = ZERO
        for position in self._positions.values():
            if position.qty:
                total = _CTX.add(total, self._value(position, marks))
        return total

    def equity(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Cash plus the marked value of every position."""
        return _CTX.add(self.cash, self.market_value(marks))

    def gross_exposure(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Σ |qty × mark × multiplier|, in dollars."""
        total = ZERO
        for position in self._positions.values():
            if position.qty:
                total = _CTX.add(total, abs(self._value(position, marks)))
        return total

    def net_exposure(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Σ qty × mark (longs minus shorts), in dollars."""
        return self.market_value(marks)

    def realized_pnl(self) -> Decimal:
        """Realized P&L over all symbols, gross of fees."""
        total = ZERO
        for position in self._positions.values():
            total = _CTX.add(total, position.realized_pnl)
        return total

    def fees(self) -> Decimal:
        """Fees paid over all symbols."""
        total = ZERO
        for position in self._positions.values():
            total = _CTX.add(total, position.fees)
        return total

    def start_session(self, equity: Decimal | None = None) -> None:
        """Begin a trading session: day P&L is measured from ``equity`` (default: equity now)."""
        self.session_start_equity = self.equity() if equity is None else equity

    def day_pnl(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Equity now minus equity at the session start: realized + unrealized, net of fees."""
        return _CTX.subtract(self.equity(marks), self.session_start_equity)
