"""An options bot: sells premium where implied volatility is well above realized."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from engine.bots.api import Bot, BotParams, OptionQuote
from engine.core.models import Bar
from engine.options.chain import NS_PER_YEAR, OptionChain, option_order_price, to_host
from engine.options.iv import implied_vol

NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(slots=True, frozen=True)
class PremiumParams(BotParams):
    takes_watchlist = False

    qty: Decimal = Decimal(1)
    rv_bars: int = 30
    bars_per_year: int = 252 * 390
    ratio: float = 1.3
    exit_ratio: float = 1.0
    min_days: int = 7
    max_days: int = 60

    def check(self) -> None:
        if len(self.symbols) != 1:
            raise ValueError(f"symbols must name one underlying, not {len(self.symbols)}")
        if self.rv_bars < 5:
            raise ValueError(f"rv_bars must be 5 or more, not {self.rv_bars}")
        if self.bars_per_year < 1:
            raise ValueError(f"bars_per_year must be 1 or more, not {self.bars_per_year}")
        if not 0 < self.exit_ratio < self.ratio:
            raise ValueError(
                f"exit_ratio ({self.exit_ratio}) must be above 0 and below ratio ({self.ratio})"
            )
        if not 0 <= self.min_days <= self.max_days:
            raise ValueError(
                f"min_days ({self.min_days}) must be zero or more and at most max_days"
                f" ({self.max_days})"
            )


def realized_vol(closes: list[Decimal], bars_per_year: int) -> float:
    """Annualized standard deviation of the log returns between ``closes``."""
    returns = np.diff(np.log(np.array([float(c) for c in closes])))
    return float(np.std(returns, ddof=1)) * math.sqrt(bars_per_year)


class PremiumBot(Bot):
    """Screens an underlying's options and sells the at-the-money straddle's legs when rich.

    Rule: realized volatility is the annualized deviation of the last ``rv_bars``
    bar-to-bar log returns (``bars_per_year`` bars a year; 1-minute bars by
    default). Among options expiring in ``min_days`` to ``max_days`` days, the
    nearest expiry's call and put with the strike closest to the spot are priced
    back to implied volatility (the Black-Scholes-Merton kernel of
    ``engine.options.iv``) from their mid. A leg whose IV is at least ``ratio``
    times realized is sold (``qty`` contracts, limit at the mid on the option tick
    grid); a sold leg is bought back once its IV falls to ``exit_ratio`` times
    realized. Confidence: 1 - ratio / (IV / RV) + 0.5, within 0.5 and 1.

    Parameters: ``symbols`` (one underlying), ``qty`` (1 contract), ``rv_bars``
    (30), ``bars_per_year`` (98280), ``ratio`` (1.3), ``exit_ratio`` (1.0),
    ``min_days`` (7), ``max_days`` (60), ``ttl_s`` (60). Start it in advise mode:
    its opportunities are on OCC symbols, for the trader to look at.
    """

    kind = "options"
    Params = PremiumParams
    params: PremiumParams

    def history_size(self) -> int:
        return self.params.rv_bars + 1

    def on_bar(self, bar: Bar) -> None:
        bars = self.remember(bar)
        p = self.params
        if len(bars) <= p.rv_bars:
            return
        rv = realized_vol([b.close for b in bars], p.bars_per_year)
        if rv <= 0:
            return
        for leg, iv in self.screen(float(bar.close)):
            richness = iv / rv
            if richness >= p.ratio:
                target = -p.qty
            elif richness <= p.exit_ratio:
                target = Decimal(0)
            else:
                continue
            confidence = min(1.0, max(0.5, 1.5 - p.ratio / richness))
            limit = option_order_price(float(leg.mid), ROUND_FLOOR)
            if limit <= 0:
                continue
            self.toward(
                leg.symbol,
                target,
                limit,
                confidence,
                f"IV {iv:.0%} is {richness:.1f}x realized {rv:.0%}",
            )

    def screen(self, spot: float) -> list[tuple[OptionQuote, float]]:
        """The at-the-money call and put of the nearest eligible expiry, with their IVs."""
        p = self.params
        now = self.ctx.clock.now_ns()
        eligible = [
            q
            for q in self.ctx.option_quotes(p.symbols[0])
            if p.min_days * NS_PER_DAY <= q.expiry_ns - now <= p.max_days * NS_PER_DAY
            and q.bid > 0
            and q.ask >= q.bid
        ]
        if not eligible:
            return []
        expiry = min(q.expiry_ns for q in eligible)
        nearest = [q for q in eligible if q.expiry_ns == expiry]
        strike = min((q.strike for q in nearest), key=lambda k: abs(float(k) - spot))
        legs = sorted(
            (q for q in nearest if q.strike == strike), key=lambda q: (not q.is_call, q.symbol)
        )
        t = (expiry - now) / NS_PER_YEAR
        ivs = implied_vol(
            np.array([float(q.mid) for q in legs]),
            spot,
            np.array([float(q.strike) for q in legs]),
            t,
            np.array([q.rate for q in legs]),
            np.array([q.dividend_yield for q in legs]),
            np.array([q.is_call for q in legs]),
        )
        return [(q, float(iv)) for q, iv in zip(legs, ivs, strict=True) if math.isfinite(iv)]


def chain_quotes(chain: OptionChain) -> list[OptionQuote]:
    """The two-sided quotes of ``chain`` as bots see them (the engine's ``option_quotes``)."""
    columns = (chain.bid, chain.ask, chain.expiry_ns, chain.r, chain.q)
    bids, asks, expiries, rates, yields = (to_host(column).tolist() for column in columns)
    quotes = []
    for i, contract in enumerate(chain.contracts):
        bid, ask = bids[i], asks[i]
        if not (math.isfinite(bid) and math.isfinite(ask)) or bid <= 0 or ask < bid:
            continue
        quotes.append(
            OptionQuote(
                symbol=contract.occ,
                underlying=chain.underlying,
                expiry_ns=int(expiries[i]),
                strike=contract.symbol.strike,
                is_call=contract.symbol.right.is_call,
                bid=Decimal(repr(bid)),
                ask=Decimal(repr(ask)),
                rate=rates[i],
                dividend_yield=yields[i],
            )
        )
    return quotes
