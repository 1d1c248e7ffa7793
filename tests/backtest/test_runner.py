"""Backtests through the engine: hand-computed buy-and-hold P&L on real bars, determinism, no
look-ahead, sweeps on Dask equal to serial runs, and the command line."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from dataclasses import replace
from datetime import date
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

from engine.backtest.runner import BacktestSpec, load_bars, run_backtest
from engine.backtest.sweep import parse_grid, run_all
from engine.bots.api import Bot
from engine.cli import main
from engine.core.errors import InputError
from engine.core.models import Bar, OrderRequest, Side

SAMPLE_DATA = Path(
    os.environ.get(
        "TICKDECK_SAMPLE_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
LEAN = SAMPLE_DATA / "lean" / "Data"
SPY_DAY = LEAN / "equity" / "usa" / "minute" / "spy" / "20131007_trade.zip"
BUNDLED = Path(__file__).resolve().parents[2] / "engine" / "data" / "bundled" / "pooksoft"
FEE = Decimal("0.005")
QTY = 100


class HoldBot(Bot):
    """Buys ``qty`` of each symbol at market on the first bar it sees, then holds."""

    kind = "hold"

    def on_bar(self, bar: Bar) -> None:
        if self.ctx.position(bar.symbol) == 0 and not self.ctx.orders():
            self.ctx.submit(OrderRequest(bar.symbol, Side.BUY, self.params.qty))


def ask_at(price: Decimal, spread_bps: Decimal) -> Decimal:
    """The feed's ask around ``price``: half the spread up, onto the cent grid."""
    return (price + price * spread_bps / 20_000).quantize(Decimal("0.01"), ROUND_CEILING)


def test_buy_and_hold_on_pooksoft_daily_bars_matches_the_hand_computed_pnl():
    # MSFT did not split in the sample's two years, so the file's prices are the bars'.
    rows = list(csv.DictReader((BUNDLED / "DA-MSFT-T-2021-04-21.csv").open()))
    days = [r for r in rows if "2019-05-01" <= r["timestamp"] <= "2019-06-28"]
    spec = BacktestSpec("hold", ("MSFT",), date(2019, 5, 1), date(2019, 6, 28))
    result = run_backtest(spec, bot=HoldBot)
    (fill,) = result.fills
    # The bot sees the first bar once it is over and buys at the next day's open ask.
    price = ask_at(Decimal(days[1]["open"]), spec.spread_bps)
    assert (fill.qty, fill.price, fill.fee) == (QTY, price, QTY * FEE)
    pnl = QTY * (Decimal(days[-1]["close"]) - price) - QTY * FEE
    assert result.metrics.pnl == pnl
    assert result.metrics.end_equity == spec.cash + pnl
    assert len(result.curve) == len(days) + 1  # the opening cash, then each day's close


@pytest.mark.skipif(not SPY_DAY.exists(), reason=f"needs the Lean sample data at {LEAN}")
def test_buy_and_hold_on_a_real_lean_minute_day_matches_the_hand_computed_pnl():
    with zipfile.ZipFile(SPY_DAY) as archive:
        text = archive.read(archive.namelist()[0]).decode()
    # The regular session only: Lean's file starts at 04:00 (ms since midnight, New York).
    bars = [row for row in csv.reader(io.StringIO(text)) if 34_200_000 <= int(row[0]) < 57_600_000]
    scale = Decimal(10_000)  # Lean equity prices are in 1/10,000 dollars
    spec = BacktestSpec(
        "hold", ("SPY",), date(2013, 10, 7), date(2013, 10, 7), timeframe="1Min", data=str(LEAN)
    )
    result = run_backtest(spec, bot=HoldBot)
    (fill,) = result.fills
    price = ask_at(Decimal(bars[1][1]) / scale, spec.spread_bps)
    assert fill.price == price
    pnl = QTY * (Decimal(bars[-1][4]) / scale - price) - QTY * FEE
    assert result.metrics.pnl == pnl
    assert result.bars == len(bars) == 390


def momentum(**changes) -> BacktestSpec:
    spec = BacktestSpec(
        "momentum",
        ("AAPL", "MSFT", "KO"),
        date(2019, 5, 1),
        date(2020, 6, 30),
        params=(("fast", "5"), ("slow", "20")),
    )
    return replace(spec, **changes)


def trades(result) -> list[tuple]:
    """The fills as trades: what was done, when and at what price (not the venue's ids)."""
    return [(f.order_id, f.symbol, f.side, f.qty, f.price, f.ts_ns, f.fee) for f in result.fills]


def test_the_same_spec_gives_the_same_trades():
    first, again = run_backtest(momentum()), run_backtest(momentum())
    assert len(first.fills) > 5
    assert trades(first) == trades(again) and first.metrics == again.metrics


def test_corrupting_future_bars_changes_no_earlier_trade():
    spec = momentum()
    bars, _ = load_bars(spec)
    cut = date(2020, 1, 2)
    later = {
        s: [
            b
            if b.ts_ns < _ns(cut)
            else replace(b, open=b.open * 3, high=b.high * 3, low=b.low * 3, close=b.close * 3)
            for b in rows
        ]
        for s, rows in bars.items()
    }
    honest, corrupted = run_backtest(spec, bars), run_backtest(spec, later)
    before = [t for t in trades(honest) if t[5] < _ns(cut)]
    assert before
    assert [t for t in trades(corrupted) if t[5] < _ns(cut)] == before
    assert trades(honest) != trades(corrupted)  # the corruption did reach the later trades


def _ns(day: date) -> int:
    from datetime import datetime, time

    from engine.core.clock import NEW_YORK, datetime_to_ns

    return datetime_to_ns(datetime.combine(day, time(0), tzinfo=NEW_YORK))


def test_a_sweep_on_dask_equals_the_serial_runs():
    spec = momentum()
    specs = [spec.with_params(point) for point in parse_grid(["fast=5,10", "slow=20"])]
    serial = run_all(run_backtest, specs, dask=False)
    distributed = run_all(run_backtest, specs, dask=True, workers=2)
    assert [trades(r) for r in distributed] == [trades(r) for r in serial]
    assert [r.metrics for r in distributed] == [r.metrics for r in serial]
    assert trades(serial[0]) != trades(serial[1])


def test_an_unknown_bot_parameter_is_one_sentence():
    with pytest.raises(InputError, match="momentum bot"):
        run_backtest(momentum(params=(("fast", "x"),)))


def test_bars_that_do_not_exist_are_one_sentence():
    with pytest.raises(InputError, match="there are no 1Day bars for ZZZZ"):
        run_backtest(momentum(symbols=("ZZZZ",)))


# -- the command line -----------------------------------------------------------------------


def test_the_command_line_prints_metrics_trades_and_saves_the_plot(tmp_path, capsys):
    out = tmp_path / "results.json"
    code = main(
        [
            "backtest",
            "--bot",
            "momentum",
            "--symbols",
            "AAPL,MSFT",
            "--start",
            "2019-05-01",
            "--end",
            "2020-06-30",
            "--params",
            "fast=5",
            "slow=20",
            "--monte-carlo",
            "200",
            "--out",
            str(tmp_path),
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    for label in ("total return", "Sharpe / Sortino", "max drawdown", "trades (", "equity  "):
        assert label in printed
    assert "Monte Carlo (200 resamples" in printed
    (page,) = tmp_path.glob("tickdeck-backtest-momentum-20190501-20200630.html")
    assert "<svg" in page.read_text()
    report = json.loads(out.read_text())
    assert report["metrics"]["trades"] == len(report["trades"]) > 0


def test_a_bad_date_on_the_command_line_is_one_sentence(capsys):
    args = "backtest --bot momentum --symbols AAPL --start 2020-02-30 --end 2020-12-31"
    code = main(args.split())
    assert code == 2
    assert capsys.readouterr().err == (
        "tickdeck: --start '2020-02-30' is not a date (YYYY-MM-DD)\n"
    )


def test_a_serial_sweep_ranks_the_grid_by_the_metric(capsys):
    args = (
        "backtest sweep --bot momentum --symbols AAPL --start 2019-05-01 --end 2020-06-30 "
        "--grid fast=5,10 slow=20,30 --serial --metric total_return"
    )
    code = main(args.split())
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[0] == "sweep: 4 runs of momentum on AAPL"
    returns = [float(line.split()[2].rstrip("%")) for line in lines[2:6]]
    assert returns == sorted(returns, reverse=True)
