"""POV on replayed real Lean minute data: participation stays within 2 points of the target.

IBM on 2013-10-07 (AlgoSeek minute bars through Lean), 10:00 to 12:00 New York:
the algo counts each minute bar's volume and buys 10 % of it through the sim venue,
which fills against the recorded quotes.
"""

from __future__ import annotations

from datetime import datetime

from engine.core.clock import NEW_YORK, datetime_to_ns
from engine.core.models import Instrument
from engine.data.driver import FeedDriver
from engine.data.replay import open_replay
from engine.execution import ParentState, PovSpec, measure
from tests.execution.harness import D, Desk, config, request

TARGET_PCT = D(10)


def test_pov_tracks_ten_percent_of_real_minute_volume(sample_data, tmp_path):
    root = sample_data / "lean" / "Data"
    source = open_replay(root, symbols=["IBM"])
    start = datetime_to_ns(datetime(2013, 10, 7, 10, 0, tzinfo=NEW_YORK))
    end = datetime_to_ns(datetime(2013, 10, 7, 12, 0, tzinfo=NEW_YORK))
    desk = Desk(
        tmp_path,
        config=config(child_interval_ms=1000),
        start_ns=source.start_ns,
        instruments={"IBM": Instrument("IBM")},
    )
    driver = FeedDriver(source, desk.clock, desk.bus, speed=0, until_ns=start)
    while driver.step():
        pass
    parent = desk.service.submit(
        request("buy", "1000000", symbol="IBM"), PovSpec(TARGET_PCT)
    ).parent
    driver.until_ns = end
    driver.exhausted = False
    while driver.step():
        pass
    quality = measure(parent)
    assert parent.state is ParentState.WORKING, parent.reason
    assert parent.market_volume > 100_000  # two hours of real IBM volume
    assert abs(quality.participation_pct - TARGET_PCT) <= 2
