"""Momentum: a moving-average crossover."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.bots.api import Bot, BotParams
from engine.core.models import Bar


@dataclass(slots=True, frozen=True)
class MomentumParams(BotParams):
    fast: int = 10
    slow: int = 30
    allow_short: bool = False

    def check(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"fast ({self.fast}) must be at least 1 and below slow ({self.slow})")


class MomentumBot(Bot):
    """Moving-average crossover on bar closes.

    Rule: with ``fast`` and ``slow`` simple moving averages of the last closes
    (the bar just closed included), when the fast average crosses above the slow
    one the bot goes long ``qty`` shares; when it crosses below, it goes flat (or
    short ``qty`` with ``allow_short``). A cross needs both averages on the bar
    before, so the first signal comes at bar ``slow + 1`` at the earliest. Orders
    are limits at the bar's close.

    Parameters: ``symbols``, ``qty`` (100), ``fast`` (10), ``slow`` (30),
    ``allow_short`` (false), ``ttl_s`` (60: how long an opportunity stays valid).
    Confidence: 0.5 plus 50 times the gap between the averages as a fraction of
    the slow one, capped at 1.
    """

    kind = "momentum"
    Params = MomentumParams
    params: MomentumParams

    def history_size(self) -> int:
        return self.params.slow + 1

    def on_bar(self, bar: Bar) -> None:
        closes = [b.close for b in self.remember(bar)]
        slow = self.params.slow
        if len(closes) <= slow:
            return
        before = _gap(closes[:-1], self.params.fast, slow)
        now = _gap(closes, self.params.fast, slow)
        if before <= 0 < now:
            target, word = self.params.qty, "above"
        elif before >= 0 > now:
            target, word = (-self.params.qty if self.params.allow_short else Decimal(0)), "below"
        else:
            return
        slow_ma = sum(closes[-slow:]) / slow
        confidence = min(1.0, 0.5 + 50 * float(abs(now) / slow_ma))
        self.toward(
            bar.symbol,
            target,
            bar.close,
            confidence,
            f"{self.params.fast}-bar average crossed {word} the {slow}-bar average",
        )


def _gap(closes: list[Decimal], fast: int, slow: int) -> Decimal:
    """Fast average minus slow average of the last closes."""
    return sum(closes[-fast:]) / fast - sum(closes[-slow:]) / slow
