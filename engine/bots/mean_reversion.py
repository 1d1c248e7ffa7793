"""Mean reversion: a z-score of the close against its rolling mean (Bollinger bands)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import Decimal

from engine.bots.api import Bot, BotParams
from engine.core.models import Bar


@dataclass(slots=True, frozen=True)
class MeanReversionParams(BotParams):
    window: int = 20
    entry_z: float = 2.0
    exit_z: float = 0.5
    allow_short: bool = False

    def check(self) -> None:
        if self.window < 3:
            raise ValueError(f"window must be 3 or more, not {self.window}")
        if not 0 <= self.exit_z < self.entry_z:
            raise ValueError(
                f"exit_z ({self.exit_z}) must be zero or more and below entry_z ({self.entry_z})"
            )


class MeanReversionBot(Bot):
    """Buys stretches below the rolling mean and sells them back at the mean.

    Rule: z = (close - mean) / standard deviation over the last ``window`` closes
    (the bar just closed included; population deviation). When z <= -``entry_z``
    the bot goes long ``qty``; when z >= ``entry_z`` it goes flat (short ``qty``
    with ``allow_short``); when |z| <= ``exit_z`` it goes flat. Orders are limits
    at the bar's close.

    Parameters: ``symbols``, ``qty`` (100), ``window`` (20), ``entry_z`` (2.0),
    ``exit_z`` (0.5), ``allow_short`` (false), ``ttl_s`` (60). Confidence: |z|
    divided by twice ``entry_z``, capped at 1.
    """

    kind = "mean_reversion"
    Params = MeanReversionParams
    params: MeanReversionParams

    def history_size(self) -> int:
        return self.params.window

    def on_bar(self, bar: Bar) -> None:
        closes = [float(b.close) for b in self.remember(bar)]
        p = self.params
        if len(closes) < p.window:
            return
        sd = statistics.pstdev(closes)
        if sd == 0:
            return
        z = (closes[-1] - statistics.fmean(closes)) / sd
        if z <= -p.entry_z:
            target = p.qty
        elif z >= p.entry_z:
            target = -p.qty if p.allow_short else Decimal(0)
        elif abs(z) <= p.exit_z:
            target = Decimal(0)
        else:
            return
        confidence = min(1.0, abs(z) / (2 * p.entry_z))
        self.toward(
            bar.symbol, target, bar.close, confidence, f"close is {z:+.2f} deviations from its mean"
        )
