"""Performance of one backtest: returns, risk, drawdowns and trade statistics.

Everything is computed from two exact records the run keeps: the equity curve (equity and
gross exposure, marked at each bar's close) and the round-trip trades. Money stays Decimal
(total P&L, profit factor's sums); ratios of returns (Sharpe, Sortino, volatility) are
statistics, computed in float from the exact per-period returns.

Definitions
    period return   equity[i] / equity[i-1] - 1, one per bar after the first.
    annualized      (1 + total return) ** (periods_per_year / periods) - 1.
    volatility      sample standard deviation of period returns x sqrt(periods_per_year).
    Sharpe          mean period return / its sample standard deviation x sqrt(periods_per_year)
                    (risk-free rate zero: the cash earns nothing in the sim).
    Sortino         mean period return / downside deviation x sqrt(periods_per_year), the
                    downside deviation being sqrt(mean(min(r, 0) ** 2)) over every period.
    max drawdown    the largest fall from a running equity peak, as a fraction of the peak;
                    its duration is the time from that peak until equity regained it (or the
                    end of the run if it never did).
    win rate        winning round trips / round trips (a zero-P&L trade is not a win).
    profit factor   gross profit / gross loss of round trips (None without a losing trade).
    turnover        traded notional / average equity.
    exposure        fraction of bars with a position open (gross exposure above zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from engine.core.prices import ZERO


@dataclass(slots=True, frozen=True)
class EquityPoint:
    """Equity and gross exposure marked at one bar's close."""

    ts_ns: int
    equity: Decimal
    gross_exposure: Decimal


@dataclass(slots=True, frozen=True)
class RoundTrip:
    """A position opened and closed (or reduced): quantity, prices and P&L net of fees."""

    symbol: str
    qty: Decimal  # signed: positive for a long trade
    entry_ns: int
    exit_ns: int
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    fees: Decimal

    @property
    def return_pct(self) -> float:
        """P&L over the capital the trade tied up, in percent."""
        cost = abs(self.qty) * self.entry_price
        return float(self.pnl / cost * 100) if cost else 0.0


@dataclass(slots=True, frozen=True)
class Metrics:
    start_equity: Decimal
    end_equity: Decimal
    pnl: Decimal
    total_return: float
    annualized_return: float
    volatility: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    max_drawdown_duration_ns: int
    trades: int
    win_rate: float | None
    profit_factor: float | None
    turnover: float
    exposure: float
    fees: Decimal

    def as_dict(self) -> dict[str, str | float | int | None]:
        """JSON-ready: money as decimal strings, everything else as numbers."""
        out: dict[str, str | float | int | None] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = str(value) if isinstance(value, Decimal) else value
        return out


METRIC_NAMES = (
    "total_return",
    "annualized_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "turnover",
    "exposure",
)
"""Metrics a sweep or walk-forward can rank by (higher is better except ``max_drawdown`` and
``volatility``, which rank ascending)."""

LOWER_IS_BETTER = frozenset({"max_drawdown", "volatility"})


def compute_metrics(
    curve: Sequence[EquityPoint],
    trips: Sequence[RoundTrip],
    *,
    periods_per_year: float,
    traded_notional: Decimal,
    fees: Decimal,
) -> Metrics:
    """The metrics of a run from its equity curve (at least one point) and round trips."""
    if not curve:
        raise ValueError("a backtest with no bars has no metrics")
    start, end = curve[0].equity, curve[-1].equity
    returns = [float(b.equity / a.equity - 1) if a.equity else 0.0 for a, b in pairwise(curve)]
    total = float(end / start - 1) if start else 0.0
    periods = len(returns)
    annualized = (
        (1 + total) ** (periods_per_year / periods) - 1 if periods and total > -1 else total
    )
    scale = math.sqrt(periods_per_year)
    sd = _stdev(returns)
    mean = sum(returns) / periods if periods else 0.0
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / periods) if periods else 0.0
    drawdown, duration = _max_drawdown(curve)
    wins = [t for t in trips if t.pnl > ZERO]
    losses = [t for t in trips if t.pnl < ZERO]
    gross_loss = -sum((t.pnl for t in losses), ZERO)
    gross_profit = sum((t.pnl for t in wins), ZERO)
    average_equity = sum((p.equity for p in curve), ZERO) / len(curve)
    return Metrics(
        start_equity=start,
        end_equity=end,
        pnl=end - start,
        total_return=total,
        annualized_return=annualized,
        volatility=sd * scale,
        sharpe=mean / sd * scale if sd > 0 else None,
        sortino=mean / downside * scale if downside > 0 else None,
        max_drawdown=drawdown,
        max_drawdown_duration_ns=duration,
        trades=len(trips),
        win_rate=len(wins) / len(trips) if trips else None,
        profit_factor=float(gross_profit / gross_loss) if gross_loss else None,
        turnover=float(traded_notional / average_equity) if average_equity else 0.0,
        exposure=sum(1 for p in curve if p.gross_exposure > ZERO) / len(curve),
        fees=fees,
    )


def _stdev(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def drawdowns(curve: Sequence[EquityPoint]) -> list[float]:
    """Each point's fall from the running peak, as a fraction of the peak (0 at a new high)."""
    out = []
    peak = None
    for point in curve:
        peak = point.equity if peak is None or point.equity > peak else peak
        out.append(float((peak - point.equity) / peak) if peak else 0.0)
    return out


def _max_drawdown(curve: Sequence[EquityPoint]) -> tuple[float, int]:
    """(depth, duration) of the deepest episode under a peak: from the peak until equity is
    back at it, or until the end of the run if it never was."""
    deepest, duration = 0.0, 0
    peak, peak_ns = curve[0].equity, curve[0].ts_ns
    depth = 0.0
    for point in curve[1:]:
        if point.equity >= peak:
            if depth > deepest:
                deepest, duration = depth, point.ts_ns - peak_ns
            peak, peak_ns, depth = point.equity, point.ts_ns, 0.0
        elif peak > ZERO:
            depth = max(depth, float((peak - point.equity) / peak))
    if depth > deepest:
        deepest, duration = depth, curve[-1].ts_ns - peak_ns
    return deepest, duration
