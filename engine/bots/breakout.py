"""Breakout: a Donchian channel."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.bots.api import Bot, BotParams
from engine.core.models import Bar


@dataclass(slots=True, frozen=True)
class BreakoutParams(BotParams):
    window: int = 20
    exit_window: int = 10
    allow_short: bool = False

    def check(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be 2 or more, not {self.window}")
        if not 1 <= self.exit_window <= self.window:
            raise ValueError(
                f"exit_window ({self.exit_window}) must be from 1 to window ({self.window})"
            )


class BreakoutBot(Bot):
    """Trades breaks of the highest high and lowest low of the previous bars.

    Rule: the entry channel is the highest high and lowest low of the ``window``
    bars before the one just closed. A close above the high goes long ``qty``; a
    close below the low goes flat (short ``qty`` with ``allow_short``). A long
    exits (to flat) when the close falls below the lowest low of the previous
    ``exit_window`` bars; a short exits above their highest high. Orders are limits
    at the bar's close.

    Parameters: ``symbols``, ``qty`` (100), ``window`` (20), ``exit_window`` (10),
    ``allow_short`` (false), ``ttl_s`` (60). Confidence: 0.5 plus the break's
    distance past the channel as a fraction of the channel's width, capped at 1.
    """

    kind = "breakout"
    Params = BreakoutParams
    params: BreakoutParams

    def history_size(self) -> int:
        return self.params.window + 1

    def on_bar(self, bar: Bar) -> None:
        bars = self.remember(bar)
        p = self.params
        if len(bars) <= p.window:
            return
        before = bars[-p.window - 1 : -1]
        high, low = max(b.high for b in before), min(b.low for b in before)
        width = high - low
        exits = bars[-p.exit_window - 1 : -1]
        held = self._targets.get(bar.symbol, Decimal(0))
        close = bar.close
        if close > high:
            target, past, why = p.qty, close - high, f"close broke above the {p.window}-bar high"
        elif close < low:
            target = -p.qty if p.allow_short else Decimal(0)
            past, why = low - close, f"close broke below the {p.window}-bar low"
        elif held > 0 and close < min(b.low for b in exits):
            target, past, why = (
                Decimal(0),
                Decimal(0),
                f"long exit under the {p.exit_window}-bar low",
            )
        elif held < 0 and close > max(b.high for b in exits):
            target, past = Decimal(0), Decimal(0)
            why = f"short exit over the {p.exit_window}-bar high"
        else:
            return
        confidence = min(1.0, 0.5 + float(past / width)) if width > 0 else 0.5
        self.toward(bar.symbol, target, close, confidence, why)
