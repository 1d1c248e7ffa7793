"""Backtest metrics, round trips, Monte Carlo and grids, against hand-computed numbers."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal as D

import pytest

from engine.backtest.metrics import EquityPoint, RoundTrip, compute_metrics, drawdowns
from engine.backtest.montecarlo import bootstrap
from engine.backtest.runner import round_trips
from engine.backtest.sweep import parse_grid, rank
from engine.backtest.walkforward import windows
from engine.core.errors import InputError
from engine.core.models import Fill, Side

DAY = 86_400 * 10**9


def curve(*equities: str, exposure: str = "0") -> list[EquityPoint]:
    return [EquityPoint(i * DAY, D(e), D(exposure)) for i, e in enumerate(equities)]


def trip(pnl: str) -> RoundTrip:
    return RoundTrip("AAPL", D(10), 0, DAY, D(100), D(100), D(pnl), D(0))


def metrics(points, trips=(), **kw):
    kw = {"periods_per_year": 252, "traded_notional": D(0), "fees": D(0)} | kw
    return compute_metrics(points, list(trips), **kw)


def test_returns_volatility_and_sharpe_follow_their_definitions():
    m = metrics(curve("100", "110", "99", "108.9"))
    returns = [0.10, -0.10, 0.10]
    mean = sum(returns) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert m.total_return == pytest.approx(0.089)
    assert m.annualized_return == pytest.approx(1.089 ** (252 / 3) - 1)
    assert m.volatility == pytest.approx(sd * math.sqrt(252))
    assert m.sharpe == pytest.approx(mean / sd * math.sqrt(252))
    assert m.sortino == pytest.approx(mean / math.sqrt(0.01 / 3) * math.sqrt(252))
    assert m.pnl == D("8.9")


def test_max_drawdown_is_the_deepest_fall_from_a_peak_and_lasts_until_it_is_regained():
    m = metrics(curve("100", "120", "90", "100", "121", "110"))
    assert m.max_drawdown == pytest.approx(0.25)  # 120 -> 90
    assert m.max_drawdown_duration_ns == 3 * DAY  # day 1 peak, regained on day 4


def test_a_drawdown_never_regained_lasts_until_the_end():
    m = metrics(curve("100", "80", "90", "95"))
    assert (m.max_drawdown, m.max_drawdown_duration_ns) == (pytest.approx(0.2), 3 * DAY)
    assert drawdowns(curve("100", "80", "90")) == pytest.approx([0, 0.2, 0.1])


def test_win_rate_and_profit_factor_count_round_trips():
    m = metrics(curve("100", "100"), [trip("30"), trip("-10"), trip("0"), trip("20")])
    assert (m.trades, m.win_rate, m.profit_factor) == (4, 0.5, 5.0)


def test_a_flat_run_has_no_sharpe_and_no_exposure():
    m = metrics(curve("100", "100", "100"))
    assert (m.sharpe, m.sortino, m.exposure, m.volatility) == (None, None, 0.0, 0.0)


def test_turnover_is_traded_notional_over_average_equity_and_exposure_counts_bars_held():
    points = [EquityPoint(0, D(100), D(0)), EquityPoint(DAY, D(300), D(50))]
    m = metrics(points, traded_notional=D(400))
    assert (m.turnover, m.exposure) == (2.0, 0.5)


def fill(side: Side, qty: int, price: str, fee: str = "0", ts: int = 0) -> Fill:
    return Fill(f"f{ts}", "o", "AAPL", side, D(qty), D(price), ts, D(fee))


def test_a_round_trip_nets_entry_and_exit_fees():
    (t,) = round_trips([fill(Side.BUY, 100, "10", "1", 0), fill(Side.SELL, 100, "12", "1", DAY)])
    assert (t.qty, t.entry_price, t.exit_price, t.pnl, t.fees) == (
        D(100),
        D(10),
        D(12),
        D(198),
        D(2),
    )
    assert (t.entry_ns, t.exit_ns) == (0, DAY)


def test_a_partial_exit_carries_a_share_of_the_entry_fee():
    fills = [
        fill(Side.BUY, 100, "10", "2"),
        fill(Side.SELL, 25, "11", "1"),
        fill(Side.SELL, 75, "9"),
    ]
    first, second = round_trips(fills)
    assert first.pnl == D(25) - D("0.5") - D(1)
    assert second.pnl == D(-75) - D("1.5")


def test_a_fill_through_zero_closes_the_long_and_opens_a_short():
    fills = [fill(Side.BUY, 10, "10"), fill(Side.SELL, 30, "12", "3"), fill(Side.BUY, 20, "11")]
    long_trip, short_trip = round_trips(fills)
    assert long_trip.pnl == D(20) - D(1)  # 10 x 2, a third of the 3 fee
    assert (short_trip.qty, short_trip.entry_price, short_trip.pnl) == (D(-20), D(12), D(18))


def test_the_monte_carlo_is_seeded_and_brackets_the_original_result():
    trips = [trip(p) for p in ("500", "-200", "300", "-100", "400", "-250")]
    first = bootstrap(trips, D(10_000), runs=500, seed=3)
    again = bootstrap(trips, D(10_000), runs=500, seed=3)
    assert first == again
    total = first.total_return
    assert total.at(5) < 0.065 < total.at(95)  # the original order compounds to about 6.5%
    assert 0 <= first.max_drawdown.at(5) <= first.max_drawdown.at(95) < 1
    assert 0 < first.probability_of_loss < 0.5


def test_a_monte_carlo_of_one_trade_says_why_not():
    with pytest.raises(InputError, match="at least two trades"):
        bootstrap([trip("1")], D(100))


def test_a_grid_is_the_cartesian_product_in_the_order_given():
    assert parse_grid(["fast=5,10", "slow=50"]) == [
        {"fast": "5", "slow": "50"},
        {"fast": "10", "slow": "50"},
    ]


@pytest.mark.parametrize("term", ["fast", "fast=", "=5", "fast=5,,10"])
def test_a_malformed_grid_term_is_one_sentence(term):
    with pytest.raises(InputError, match="is not a grid term; write name=value1,value2"):
        parse_grid([term])


def test_ranking_puts_undefined_metrics_last_and_drawdown_ascending():
    runs = {
        "a": metrics(curve("100", "90", "100")),
        "b": metrics(curve("100", "100")),
        "c": metrics(curve("100", "99", "104")),
    }
    assert rank(list(runs), runs.get, "max_drawdown") == ["b", "c", "a"]
    assert rank(list(runs), runs.get, "sharpe")[-1] == "b"
    with pytest.raises(InputError, match="'profit' is not a metric"):
        rank(list(runs), runs.get, "profit")


def test_walk_forward_windows_tile_the_span_after_the_first_training_window():
    spans = windows(date(2020, 1, 1), date(2020, 4, 30), train_days=60, test_days=30)
    assert [(w.test_start, w.test_end) for w in spans] == [
        (date(2020, 3, 1), date(2020, 3, 30)),
        (date(2020, 3, 31), date(2020, 4, 29)),
    ]  # the one day left over is no test window
    assert all(w.train_end < w.test_start for w in spans)
