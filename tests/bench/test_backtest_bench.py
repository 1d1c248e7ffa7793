"""Backtest speed: bars/s through the full engine path beside backtrader on the same bars.

The same moving-average crossover runs in both on the bundled daily bars of the 20 sim
symbols: tickdeck's momentum bot through the bot service, pre-trade risk, the OMS and journal
and the sim venue; backtrader's Cerebro with the same rule (SMA crossover, a buy limit at the
signal bar's close (on the cent grid, away from the market) valid for the next bar, closing
on the cross down). No fees and no spread,
so both fill a limit when the next bar trades through it and the trades are the same: the
bench checks that before it reports. The empty bot (no callbacks doing anything) measures the
path itself. Best of a few runs after a warm-up.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import backtrader as bt
import pandas as pd

from engine.backtest.runner import BacktestSpec, load_bars, run_backtest
from engine.bots.api import Bot
from engine.core.models import Side
from engine.core.prices import passive_tick
from engine.data.calibration import DEFAULT_WATCHLIST
from tests.bench.results import Figure, record

FAST, SLOW, QTY = 10, 30, 100
START, END = date(2019, 4, 22), date(2021, 4, 21)
REPEATS = 3


class EmptyBot(Bot):
    """Receives every bar and does nothing: the cost of the path alone."""

    kind = "empty"


def _spec(bot: str) -> BacktestSpec:
    return BacktestSpec(
        bot=bot,
        symbols=tuple(DEFAULT_WATCHLIST),
        start=START,
        end=END,
        params=(("fast", str(FAST)), ("slow", str(SLOW)), ("qty", str(QTY)))
        if bot == "momentum"
        else (),
        fee_per_share=Decimal(0),
        spread_bps=Decimal(0),
        cash=Decimal(10_000_000),
        # Backtrader has no pre-trade limits: lift those that would refuse what it takes (a gap
        # past the limit makes it aggressive for the collar; AMZN's 100 shares are $300k).
        risk=tuple(
            (key, "none")
            for key in (
                "collar_soft_pct",
                "collar_hard_pct",
                "max_order_notional",
                "max_position_notional",
                "max_gross_exposure",
            )
        ),
    )


class _Crossover(bt.Strategy):
    params = (("fast", FAST), ("slow", SLOW))

    def __init__(self) -> None:
        self.cross = {
            d: bt.ind.CrossOver(
                bt.ind.SMA(d.close, period=self.p.fast), bt.ind.SMA(d.close, period=self.p.slow)
            )
            for d in self.datas
        }
        self.fills: list[tuple[str, str]] = []
        self.pending: list = []

    def next(self) -> None:
        # An order lives for one bar (the sim's DAY order): cancel what the last bar left.
        for order in self.pending:
            if order.alive():
                self.cancel(order)
        self.pending = []
        for data in self.datas:
            cross = self.cross[data][0]
            held = self.getposition(data).size
            if cross > 0 and held == 0:
                limit = _limit(data, buying=True)
                self.pending.append(
                    self.buy(data=data, size=QTY, exectype=bt.Order.Limit, price=limit)
                )
            elif cross < 0 and held > 0:
                limit = _limit(data, buying=False)
                self.pending.append(
                    self.sell(data=data, size=held, exectype=bt.Order.Limit, price=limit)
                )

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            self.fills.append((order.data._name, "buy" if order.isbuy() else "sell"))


def _limit(data, *, buying: bool) -> float:
    """The signal bar's close on the cent grid, away from the market, as tickdeck's bot
    service rounds a bot's limit (adjusted history has sub-penny closes)."""
    close = Decimal(repr(data.close[0]))
    return float(passive_tick(data._name, close, buying))


def _backtrader(bars) -> tuple[float, list[tuple[str, str]]]:
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, rows in bars.items():
        frame = pd.DataFrame(
            {
                "open": [float(b.open) for b in rows],
                "high": [float(b.high) for b in rows],
                "low": [float(b.low) for b in rows],
                "close": [float(b.close) for b in rows],
                "volume": [b.volume for b in rows],
            },
            index=pd.to_datetime([b.ts_ns for b in rows]),
        )
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=symbol)
    cerebro.addstrategy(_Crossover)
    cerebro.broker.setcash(10_000_000)
    started = time.perf_counter()
    (strategy,) = cerebro.run()
    return time.perf_counter() - started, strategy.fills


def _ours(spec, bars, bot=None) -> tuple[float, list[tuple[str, str]]]:
    started = time.perf_counter()
    result = run_backtest(spec, bars, bot=bot)
    elapsed = time.perf_counter() - started
    return elapsed, [(f.symbol, f.side.value) for f in result.fills]


def _best(run) -> tuple[float, list]:
    runs = [run() for _ in range(REPEATS)]
    return min(r[0] for r in runs), runs[0][1]


def test_bars_per_second_beside_backtrader():
    spec = _spec("momentum")
    bars, _ = load_bars(spec)
    count = sum(len(rows) for rows in bars.values())
    _ours(spec, bars)  # warm-up: imports, first-use compilation
    _backtrader(bars)
    ours_s, our_fills = _best(lambda: _ours(spec, bars))
    theirs_s, their_fills = _best(lambda: _backtrader(bars))
    # Equal trades: the same symbols bought and sold, in the same order per symbol.
    for symbol in bars:
        mine = [side for s, side in our_fills if s == symbol]
        theirs = [side for s, side in their_fills if s == symbol]
        assert mine == theirs, symbol
    assert len(our_fills) > 20 and {side for _, side in our_fills} == {
        Side.BUY.value,
        Side.SELL.value,
    }
    empty_s, _ = _best(lambda: _ours(_spec("empty"), bars, EmptyBot))
    backtrader_rate = count / theirs_s
    record(
        Figure(
            "backtest momentum bars/s (risk + OMS + sim venue)",
            count / ours_s,
            "bars/s",
            "backtrader, same rule and bars",
            backtrader_rate,
            backtrader_rate and (count / ours_s) / backtrader_rate,
            ">= 10x backtrader",
        )
    )
    record(
        Figure(
            "backtest empty-bot bars/s",
            count / empty_s,
            "bars/s",
            "backtrader, same rule and bars",
            backtrader_rate,
            (count / empty_s) / backtrader_rate,
        )
    )
