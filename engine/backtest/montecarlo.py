"""Monte Carlo of a backtest's trades: how lucky was the order they came in?

The round trips' returns (P&L over the equity at the start of the run, so they compound like
the account) are resampled with replacement into ``runs`` sequences as long as the original,
and each sequence is compounded into an equity path. The spread of final returns and of max
drawdowns across paths says how much of the backtest's result was the particular sequence.
Seeded: the same seed gives the same distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from engine.backtest.metrics import RoundTrip
from engine.core.errors import InputError

PERCENTILES = (5, 25, 50, 75, 95)


@dataclass(slots=True, frozen=True)
class Distribution:
    """Percentiles of one quantity across the resampled paths (``PERCENTILES``)."""

    mean: float
    percentiles: tuple[tuple[int, float], ...]

    def at(self, pct: int) -> float:
        return dict(self.percentiles)[pct]


@dataclass(slots=True, frozen=True)
class MonteCarloResult:
    runs: int
    trades: int
    total_return: Distribution
    max_drawdown: Distribution
    probability_of_loss: float  # share of paths that end below where they began


def bootstrap(
    trips: Sequence[RoundTrip], start_equity: Decimal, *, runs: int = 2_000, seed: int = 7
) -> MonteCarloResult:
    """Resample ``trips`` ``runs`` times; ``InputError`` with fewer than two trades."""
    if len(trips) < 2:
        raise InputError(
            f"a Monte Carlo needs at least two trades to resample; the backtest made {len(trips)}."
        )
    if runs < 1:
        raise InputError(f"runs must be at least 1, not {runs}.")
    returns = np.array([float(t.pnl / start_equity) for t in trips])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(returns), size=(runs, len(returns)))
    growth = np.cumprod(1.0 + returns[picks], axis=1)
    paths = np.concatenate([np.ones((runs, 1)), growth], axis=1)
    peaks = np.maximum.accumulate(paths, axis=1)
    drawdown = ((peaks - paths) / peaks).max(axis=1)
    final = paths[:, -1] - 1.0
    return MonteCarloResult(
        runs=runs,
        trades=len(trips),
        total_return=_distribution(final),
        max_drawdown=_distribution(drawdown),
        probability_of_loss=float((final < 0).mean()),
    )


def _distribution(values: np.ndarray) -> Distribution:
    return Distribution(
        mean=float(values.mean()),
        percentiles=tuple((p, float(np.percentile(values, p))) for p in PERCENTILES),
    )
