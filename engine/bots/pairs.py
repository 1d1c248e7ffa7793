"""Pairs: a cointegration-tested spread z-score on two symbols (Engle-Granger)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from engine.bots.api import Bot, BotParams
from engine.core.models import Bar

# MacKinnon (2010), table 2: Engle-Granger tau at 5% for two variables with a constant,
# as beta_inf + beta_1 / T + beta_2 / T^2.
_EG_5PCT = (-3.3377, -5.967, -8.98)


@dataclass(slots=True, frozen=True)
class PairsParams(BotParams):
    takes_watchlist = False

    window: int = 60
    entry_z: float = 2.0
    exit_z: float = 0.5

    def check(self) -> None:
        if len(self.symbols) != 2:
            raise ValueError(f"symbols must name exactly two symbols, not {len(self.symbols)}")
        if self.window < 20:
            raise ValueError(f"window must be 20 or more, not {self.window}")
        if not 0 <= self.exit_z < self.entry_z:
            raise ValueError(
                f"exit_z ({self.exit_z}) must be zero or more and below entry_z ({self.entry_z})"
            )


@dataclass(slots=True, frozen=True)
class Cointegration:
    """An Engle-Granger fit of ``a = alpha + beta * b``: the ADF t-statistic of its residuals."""

    alpha: float
    beta: float
    t_stat: float
    critical: float  # 5% critical value for this sample size
    z: float  # the last residual in standard deviations of all of them

    @property
    def cointegrated(self) -> bool:
        return self.t_stat < self.critical


def engle_granger(a: np.ndarray, b: np.ndarray) -> Cointegration | None:
    """Regress ``a`` on ``b`` by least squares, then test the residuals for a unit root.

    The Dickey-Fuller regression is ``de_t = gamma * e_(t-1)`` without lags or a constant
    (the residuals already have mean zero); its t-statistic is compared with MacKinnon's 5%
    Engle-Granger value. None when the series are too short or flat to fit.
    """
    n = len(a)
    if n < 10 or float(np.std(b)) == 0.0:
        return None
    beta, alpha = np.polyfit(b, a, 1)
    resid = a - (alpha + beta * b)
    sd = float(np.std(resid))
    if sd == 0.0:
        return None
    lagged, diff = resid[:-1], np.diff(resid)
    gamma = float(lagged @ diff / (lagged @ lagged))
    errors = diff - gamma * lagged
    s2 = float(errors @ errors) / (len(diff) - 1)
    t_stat = gamma / math.sqrt(s2 / float(lagged @ lagged))
    b_inf, b1, b2 = _EG_5PCT
    critical = b_inf + b1 / n + b2 / n**2
    return Cointegration(float(alpha), float(beta), t_stat, critical, float(resid[-1]) / sd)


class PairsBot(Bot):
    """Trades the spread of two cointegrated symbols back to its mean.

    Rule: over the last ``window`` bars both symbols closed at the same time, fit
    ``A = alpha + beta * B`` by least squares and run the Engle-Granger test (ADF on
    the residuals, 5% level). Only while the pair tests cointegrated: when the
    spread's z-score (last residual over the residuals' deviation) is at least
    ``entry_z`` the bot sells ``qty`` A and buys ``round(beta * qty)`` B; at most
    ``-entry_z`` it buys A and sells B; within ``exit_z`` of zero, or when the pair
    stops testing cointegrated, it goes flat in both. Orders are limits at the
    closes.

    Parameters: ``symbols`` (two, ``A+B``), ``qty`` (100, of A), ``window`` (60),
    ``entry_z`` (2.0), ``exit_z`` (0.5), ``ttl_s`` (60). Confidence: |z| over twice
    ``entry_z``, capped at 1.
    """

    kind = "pairs"
    Params = PairsParams
    params: PairsParams

    def history_size(self) -> int:
        return self.params.window * 2

    def on_bar(self, bar: Bar) -> None:
        self.remember(bar)
        first, second = self.params.symbols
        a_bars, b_bars = self._bars.get(first), self._bars.get(second)
        if not a_bars or not b_bars or a_bars[-1].ts_ns != b_bars[-1].ts_ns:
            return  # wait for the other leg's bar of the same minute
        b_close = {b.ts_ns: b.close for b in b_bars}
        pairs = [(a.close, b_close[a.ts_ns]) for a in a_bars if a.ts_ns in b_close]
        pairs = pairs[-self.params.window :]
        if len(pairs) < self.params.window:
            return
        a = np.array([float(x) for x, _ in pairs])
        b = np.array([float(y) for _, y in pairs])
        fit = engle_granger(a, b)
        if fit is None:
            return
        self.decide(fit, pairs[-1])

    def decide(self, fit: Cointegration, closes: tuple[Decimal, Decimal]) -> None:
        """Targets for both legs from one fit and the latest closes."""
        p = self.params
        first, second = p.symbols
        hedge = Decimal(round(fit.beta * float(p.qty)))
        if not fit.cointegrated or hedge <= 0 or abs(fit.z) <= p.exit_z:
            target_a = Decimal(0)
            why = (
                "spread is back at its mean"
                if fit.cointegrated
                else f"pair no longer cointegrated (ADF t {fit.t_stat:.2f})"
            )
        elif fit.z >= p.entry_z:
            target_a, why = -p.qty, f"spread z {fit.z:+.2f}: {first} rich to {second}"
        elif fit.z <= -p.entry_z:
            target_a, why = p.qty, f"spread z {fit.z:+.2f}: {first} cheap to {second}"
        else:
            return
        # The B leg offsets A: long B against short A, short B against long A.
        target_b = -hedge * (target_a / p.qty) if target_a else Decimal(0)
        confidence = min(1.0, abs(fit.z) / (2 * p.entry_z))
        self.toward(first, target_a, closes[0], confidence, why)
        self.toward(second, target_b, closes[1], confidence, why)
