"""Each built-in bot on a hand-made series gives the signals its rule says, and never looks ahead."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import numpy as np
import pytest

from engine.bots.api import BotError, OptionQuote
from engine.bots.offline import OfflineContext, run_offline
from engine.bots.pairs import Cointegration, PairsBot, engle_granger
from engine.core.models import Bar, Side
from engine.options.bsm import bs_price

MINUTE = 60_000_000_000
DAY = 86_400_000_000_000


def bars(symbol: str, closes, *, spread: float = 0.0) -> list[Bar]:
    """One-minute bars at the given closes; high and low ``spread`` either side of the close."""
    out = []
    for i, close in enumerate(closes):
        c = Decimal(str(close))
        s = Decimal(str(spread))
        out.append(Bar(symbol, i * MINUTE, c, c + s, c - s, c, 1_000))
    return out


def summary(signals) -> list[tuple[int, str, str, Decimal, Decimal | None]]:
    """(bar index, side, symbol, qty, limit) of each signal."""
    return [(s.expires_at // MINUTE - 1, s.side.value, s.symbol, s.qty, s.limit) for s in signals]


def test_momentum_buys_the_cross_above_and_sells_the_cross_below():
    # fast 2 / slow 4: bar 5 (12): fast 11 > slow 10.5 after equal averages; bar 7 (8): 10 < 10.5.
    closes = [10, 10, 10, 10, 10, 12, 12, 8, 8, 8]
    signals = run_offline(
        "momentum",
        bars("AAPL", closes),
        {"symbols": "AAPL", "fast": 2, "slow": 4, "qty": 10, "ttl_s": 60},
    )
    assert summary(signals) == [
        (5, "buy", "AAPL", Decimal(10), Decimal(12)),
        (7, "sell", "AAPL", Decimal(10), Decimal(8)),
    ]


def test_momentum_goes_short_on_the_cross_below_when_allowed():
    closes = [10, 10, 10, 10, 10, 12, 12, 8, 8, 8]
    params = {"symbols": "AAPL", "fast": 2, "slow": 4, "qty": 10, "allow_short": "true"}
    signals = run_offline("momentum", bars("AAPL", closes), params)
    # From +10 to -10: one sell of 20.
    assert [(s.side, s.qty) for s in signals] == [(Side.BUY, 10), (Side.SELL, 20)]


def test_mean_reversion_buys_two_deviations_down_and_sells_back_at_the_mean():
    # Bar 5: window 10,10,10,10,7: mean 9.4, deviation 1.2, z = -2.0 -> buy.
    # Bar 6: window 10,10,10,7,10: z = +0.5, inside exit_z 0.6 -> flat.
    closes = [10, 10, 10, 10, 10, 7, 10, 10]
    params = {"symbols": "KO", "window": 5, "entry_z": 1.5, "exit_z": 0.6, "qty": 10}
    signals = run_offline("mean_reversion", bars("KO", closes), params)
    assert summary(signals) == [
        (5, "buy", "KO", Decimal(10), Decimal(7)),
        (6, "sell", "KO", Decimal(10), Decimal(10)),
    ]
    assert signals[0].confidence == pytest.approx(2.0 / 3.0)


def test_breakout_buys_above_the_channel_and_exits_under_the_exit_channel():
    # High/low one either side of the close. Bar 4 (13) breaks the 4-bar high 11; bar 7 (12.5)
    # is inside the 4-bar channel (9..15) but under the 2-bar exit low 13.
    closes = [10, 10, 10, 10, 13, 14, 14, 12.5]
    params = {"symbols": "XOM", "window": 4, "exit_window": 2, "qty": 10}
    signals = run_offline("breakout", bars("XOM", closes, spread=1), params)
    assert summary(signals) == [
        (4, "buy", "XOM", Decimal(10), Decimal(13)),
        (7, "sell", "XOM", Decimal(10), Decimal("12.5")),
    ]
    assert signals[1].rationale == "long exit under the 2-bar low"


def test_engle_granger_finds_a_stationary_spread_and_rejects_two_random_walks():
    rng = np.random.default_rng(3)
    b = 100 + np.cumsum(rng.normal(0, 1, 200))
    a = 5 + 2 * b + rng.normal(0, 0.5, 200)
    fit = engle_granger(a, b)
    assert fit is not None and fit.cointegrated
    assert fit.beta == pytest.approx(2.0, abs=0.05)
    walk = 100 + np.cumsum(rng.normal(0, 1, 200))
    apart = engle_granger(walk, b)
    assert apart is not None and not apart.cointegrated


def test_pairs_sells_the_rich_leg_and_buys_the_hedge():
    ctx = OfflineContext("pairs")
    bot = PairsBot(PairsBot.Params.parse("pairs", {"symbols": "KO+PEP", "qty": 10}), ctx)
    fit = Cointegration(alpha=1.0, beta=1.5, t_stat=-6.0, critical=-3.4, z=2.5)
    bot.decide(fit, (Decimal("60.10"), Decimal("170.00")))
    # z 2.5 >= 2: sell 10 KO, buy round(1.5 x 10) = 15 PEP.
    assert [(s.side, s.symbol, s.qty, s.limit) for s in ctx.signals] == [
        (Side.SELL, "KO", Decimal(10), Decimal("60.10")),
        (Side.BUY, "PEP", Decimal(15), Decimal("170.00")),
    ]
    assert ctx.signals[0].confidence == pytest.approx(2.5 / 4)


def test_pairs_goes_flat_when_the_pair_stops_testing_cointegrated():
    ctx = OfflineContext("pairs")
    bot = PairsBot(PairsBot.Params.parse("pairs", {"symbols": "KO+PEP", "qty": 10}), ctx)
    bot.decide(Cointegration(1.0, 1.5, -6.0, -3.4, -2.5), (Decimal(60), Decimal(170)))
    bot.decide(Cointegration(1.0, 1.5, -1.0, -3.4, -2.5), (Decimal(61), Decimal(171)))
    assert [(s.side, s.symbol, s.qty) for s in ctx.signals] == [
        (Side.BUY, "KO", Decimal(10)),
        (Side.SELL, "PEP", Decimal(15)),
        (Side.SELL, "KO", Decimal(10)),
        (Side.BUY, "PEP", Decimal(15)),
    ]
    assert ctx.signals[-1].rationale.startswith("pair no longer cointegrated")


def test_pairs_on_a_series_signals_only_when_the_spread_jumps():
    # B wiggles; A = 3 + 2B plus an alternating +-0.2 (a stationary spread, |z| about 1),
    # then A jumps 3 above its fair value on the last bar.
    n = 40
    b = [round(100 + 5 * math.sin(i * 0.7), 2) for i in range(n)]
    a = [round(3 + 2 * b[i] + (0.2 if i % 2 else -0.2), 2) for i in range(n)]
    a[-1] = round(a[-1] + 3, 2)
    series = sorted(bars("KO", a) + bars("PEP", b), key=lambda bar: (bar.ts_ns, bar.symbol))
    signals = run_offline("pairs", series, {"symbols": "KO+PEP", "window": 40, "qty": 10})
    assert [(i, side, symbol, qty) for i, side, symbol, qty, _ in summary(signals)] == [
        (n - 1, "sell", "KO", Decimal(10)),
        (n - 1, "buy", "PEP", Decimal(20)),
    ]


def test_ml_learns_an_alternating_series_walk_forward():
    # Up, down, up, ...: after a down bar the next is up. With one lag and 10 known samples the
    # first model exists at bar 11 (an up bar: it predicts down, already flat); bar 12 is a down
    # bar: buy; bar 13 an up bar: sell.
    closes = [100 if i % 2 == 0 else 101 for i in range(16)]
    params = {"symbols": "MSFT", "lags": 1, "train_bars": 20, "min_train": 10, "retrain_every": 1}
    signals = run_offline("ml", bars("MSFT", closes), {**params, "qty": 5})
    assert summary(signals)[:2] == [
        (12, "buy", "MSFT", Decimal(5), Decimal(100)),
        (13, "sell", "MSFT", Decimal(5), Decimal(101)),
    ]
    assert all(s.confidence >= 0.6 for s in signals)


def test_ml_model_is_saved_and_loaded_back_after_a_restart(tmp_path):
    closes = [100 if i % 2 == 0 else 101 for i in range(14)]
    params = {"symbols": "MSFT", "lags": 1, "train_bars": 20, "min_train": 10, "retrain_every": 1}
    run_offline("ml", bars("MSFT", closes), params, storage_dir=tmp_path)
    assert (tmp_path / "ml-MSFT.joblib").is_file()
    # A fresh bot with too few bars to train still predicts, from the saved model: after a
    # down bar (100), up: buy.
    fresh = run_offline("ml", bars("MSFT", [101, 100, 101, 100]), params, storage_dir=tmp_path)
    assert [(s.side, s.limit) for s in fresh][:1] == [(Side.BUY, Decimal(100))]


def _chain(spot: float, vol: float, now_ns: int) -> list[OptionQuote]:
    """A call and a put at 100 and 105, 30 days out, quoted 0.10 either side of BSM at ``vol``
    (the mid rounded to 0.10, on every option tick grid)."""
    expiry = now_ns + 30 * DAY
    quotes = []
    for strike in (100, 105):
        for is_call in (True, False):
            price = float(bs_price(spot, strike, 30 / 365, 0.0, 0.0, vol, is_call))
            mid = Decimal(str(round(price, 1)))
            right = "C" if is_call else "P"
            quotes.append(
                OptionQuote(
                    f"AAPL240415{right}00{strike}000",
                    "AAPL",
                    expiry,
                    Decimal(strike),
                    is_call,
                    mid - Decimal("0.1"),
                    mid + Decimal("0.1"),
                )
            )
    return quotes


def test_options_bot_sells_the_atm_straddle_legs_when_iv_is_far_above_realized():
    # Closes alternate 101/100: realized vol ~ 0.0100 x sqrt(252) ~ 16%; quotes at 40% IV for
    # spot 100 and 30 days at bar 5, the first bar with 5 returns.
    closes = [101 if i % 2 == 0 else 100 for i in range(7)]
    spot_bars = bars("AAPL", closes)
    quotes = _chain(100.0, 0.40, spot_bars[5].ts_ns)
    params = {"symbols": "AAPL", "rv_bars": 5, "bars_per_year": 252, "ratio": 1.3}
    signals = run_offline("options", spot_bars, params, option_quotes=lambda _u: quotes)
    atm = {q.symbol: q.mid for q in quotes if q.strike == 100}
    # Rich from bar 5 on (5 returns known): both legs of the 100 strike, nearest the 100 spot.
    assert [(s.side, s.symbol, s.qty, s.limit) for s in signals] == [
        (Side.SELL, symbol, Decimal(1), mid) for symbol, mid in atm.items()
    ]
    assert "IV 40%" in signals[0].rationale


def test_options_bot_stays_quiet_when_iv_is_near_realized():
    closes = [100 if i % 2 == 0 else 101 for i in range(7)]
    spot_bars = bars("AAPL", closes)
    quotes = _chain(100.0, 0.17, spot_bars[-1].ts_ns)
    params = {"symbols": "AAPL", "rv_bars": 5, "bars_per_year": 252, "ratio": 1.3}
    assert run_offline("options", spot_bars, params, option_quotes=lambda _u: quotes) == []


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("momentum", {"fast": 3, "slow": 8}),
        ("mean_reversion", {"window": 10, "entry_z": 1.5}),
        ("breakout", {"window": 10, "exit_window": 5}),
        ("ml", {"lags": 3, "min_train": 20, "train_bars": 60, "retrain_every": 5}),
    ],
)
def test_corrupting_future_bars_changes_no_past_signal(kind, params):
    rng = random.Random(11)
    closes = [100.0]
    for _ in range(199):
        closes.append(round(closes[-1] * (1 + rng.gauss(0, 0.01)), 2))
    clean = bars("AAPL", closes, spread=0.2)
    cut = 120
    corrupt = clean[:cut] + bars("AAPL", [c * 3 for c in closes], spread=5)[cut:]
    params = {"symbols": "AAPL", **params}
    before = [s for s in run_offline(kind, clean, params) if s.expires_at <= (cut + 1) * MINUTE]
    after = [s for s in run_offline(kind, corrupt, params) if s.expires_at <= (cut + 1) * MINUTE]
    assert before, "the series should give signals before the cut"
    assert before == after


def test_pairs_corrupting_future_bars_changes_no_past_signal():
    rng = np.random.default_rng(5)
    b = 100 + np.cumsum(rng.normal(0, 0.5, 200))
    a = 5 + 2 * b + rng.normal(0, 0.6, 200)
    series = sorted(
        bars("KO", np.round(a, 2)) + bars("PEP", np.round(b, 2)), key=lambda x: (x.ts_ns, x.symbol)
    )
    cut = 150
    corrupt = [
        bar
        if bar.ts_ns < cut * MINUTE
        else Bar(bar.symbol, bar.ts_ns, bar.open, bar.high * 2, bar.low, bar.close * 2, 1)
        for bar in series
    ]
    params = {"symbols": "KO+PEP", "window": 40, "entry_z": 1.5}
    before = [s for s in run_offline("pairs", series, params) if s.expires_at <= cut * MINUTE]
    after = [s for s in run_offline("pairs", corrupt, params) if s.expires_at <= cut * MINUTE]
    assert before
    assert before == after


def test_a_bad_parameter_is_one_sentence_naming_it():
    with pytest.raises(
        BotError, match=r"^momentum bot: fast \(30\) must be at least 1 and below slow \(20\)\.$"
    ):
        run_offline("momentum", [], {"symbols": "AAPL", "fast": 30, "slow": 20})
    with pytest.raises(
        BotError, match=r"^the pairs bot has no parameter 'fats'; it takes symbols, "
    ):
        run_offline("pairs", [], {"symbols": "KO+PEP", "fats": 3})
    with pytest.raises(BotError, match=r"^ml bot: lags must be a whole number, not 'x'\.$"):
        run_offline("ml", [], {"symbols": "AAPL", "lags": "x"})
