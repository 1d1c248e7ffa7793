"""Execution quality figures, worked out by hand."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from engine.core.models import Side
from engine.execution import IcebergSpec, Parent, TwapSpec, measure
from engine.execution.parent import parent_from_json
from engine.journal import Journal

D = Decimal


def parent(side: Side = Side.BUY, **changes) -> Parent:
    values = dict(
        id="algo-1",
        symbol="XYZ",
        side=side,
        qty=D(1000),
        spec=TwapSpec(600),
        created_ns=0,
        start_ns=0,
        arrival_price=D("10.00"),
        last_price=D("10.10"),
        filled_qty=D(600),
        notional=D(6030),  # average 10.05
        fees=D("1.50"),
        market_volume=6000,
        market_notional=D(60_120),  # interval VWAP 10.02
        scheduled_qty=D(700),
    )
    values.update(changes)
    return Parent(**values)


def test_a_buy_that_paid_above_its_benchmarks_shows_costs():
    quality = measure(parent())
    assert quality.avg_price == D("10.05")
    assert quality.interval_vwap == D("10.02")
    assert quality.arrival_slippage_bps == D("50.00")  # 0.05 / 10.00
    assert quality.vwap_slippage_bps == D("29.94")  # 0.03 / 10.02
    # 600 x 0.05 paid + 400 x 0.10 missed + 1.50 fees = 71.50, of 10,000 at arrival
    assert (quality.shortfall, quality.shortfall_bps) == (D("71.50"), D("71.50"))
    assert quality.participation_pct == D("10.00")  # 600 of 6,000
    assert quality.schedule_deviation_pct == D("-10.00")  # 100 behind, of 1,000


def test_a_sell_above_arrival_is_a_gain():
    quality = measure(parent(Side.SELL))
    assert quality.arrival_slippage_bps == D("-50.00")
    # sold 600 at 0.05 better, the 400 unsold rose 0.10 (a gain), fees 1.50: -70 + 1.50
    assert quality.shortfall == D("-68.50")


def test_an_iceberg_has_no_schedule_and_no_volume_no_participation():
    quality = measure(parent(spec=IcebergSpec(D(100)), market_volume=0, market_notional=D(0)))
    assert quality.schedule_deviation_pct is None
    assert quality.participation_pct is None
    assert quality.vwap_slippage_bps is None


def test_a_parent_round_trips_through_its_json():
    original = parent(children=["td-1", "td-2"], limit_price=D("10.20"))
    assert parent_from_json(original.to_json()) == original


def test_a_version_2_journal_gains_the_parents_table(tmp_path):
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE parents")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    journal = Journal(path)
    journal.save_parent("algo-1", "working", 5, parent().to_json())
    assert journal.schema_version == 3
    assert [parent_from_json(r) for r in journal.load_parents()] == [parent()]
    journal.close()
