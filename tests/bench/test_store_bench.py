"""History store: MB/s and bars/s loading a month of minute bars for 20 symbols.

The store is moto's S3 server in its own process on loopback (the tests' server).
There are only 3 recorded days of 4 symbols in the shared Lean data, so the
month is synthesized from them: each of 20 symbols x 21 October 2013 sessions
gets one real recorded day's bars (pre- and post-market included, about 800
bars), moved to that session's date. The figures say "synthesized" for that.

Beside each figure, from the same run:
- store load (cold cache: list, GET, Parquet decode into exact-price columns,
  cache write) against a raw GET of the same objects' bytes with the same
  number of fetch threads; goal >= 70% of the raw throughput;
- cache-hit load (the same read again, served from the local cache) against
  the cold store load; goal >= 10x faster.
Each timing is the best of ``ROUNDS``.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

import pytest

from engine.core.clock import NEW_YORK, datetime_to_ns, ns_to_datetime
from engine.core.models import Bar
from engine.data.lean import read_minute_trades
from engine.data.store import HistoryStore, Kind, LocalCache, Series
from engine.data.store.calendar import sessions
from engine.data.store.schema import bars_table
from tests.bench.results import Figure, record
from tests.conftest import sample_data_root
from tests.store.conftest import store_settings
from tests.store.s3server import start_s3_server

SYMBOLS = 20
ROUNDS = 3
REAL = [(s, d) for s in ("spy", "aig", "bac", "ibm") for d in ("20131004", "20131007", "20131008")]
MONTH = (date(2013, 10, 1), date(2013, 10, 31))
_MB = 1024 * 1024


def _moved(bars: list[Bar], symbol: str, day: date) -> list[Bar]:
    """``bars`` of one recorded day, renamed and moved to ``day`` at the same New York times."""
    out = []
    for bar in bars:
        local = ns_to_datetime(bar.ts_ns, NEW_YORK)
        moment = datetime.combine(day, clock_time(local.hour, local.minute), tzinfo=NEW_YORK)
        out.append(
            Bar(symbol, datetime_to_ns(moment), bar.open, bar.high, bar.low, bar.close, bar.volume)
        )
    return out


@pytest.fixture(scope="module")
def month_store(tmp_path_factory):
    root = sample_data_root() / "lean" / "Data" / "equity" / "usa" / "minute"
    if not root.is_dir():
        pytest.skip(f"recorded Lean minute data not found under {root}")
    real = [list(read_minute_trades(root / s / f"{d}_trade.zip")) for s, d in REAL]
    days = [session.day for session in sessions(*MONTH)][:21]
    server = start_s3_server()
    try:
        settings = store_settings(server, "bench")
        writer = HistoryStore(settings, cache=LocalCache(tmp_path_factory.mktemp("w"), 0))
        writer.ensure_bucket()
        series = [Series(Kind.BARS, "1Min", f"SYM{i:02d}") for i in range(SYMBOLS)]
        for index, one in enumerate(series):
            bars = [
                bar
                for j, day in enumerate(days)
                for bar in _moved(real[(index + j) % len(real)], one.symbol, day)
            ]
            writer.write(one, bars_table(bars), "synthetic-lean")
        writer.close()
        yield settings, series, days
    finally:
        server.stop()


def _best(function) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def test_store_load_beside_raw_get_and_cache_hit(month_store, tmp_path: Path):
    settings, series, days = month_store
    start, end = days[0], days[-1]
    probe = HistoryStore(settings, cache=LocalCache(tmp_path / "probe", 0))
    keys = [item.key for one in series for item in probe.objects(one).values()]
    raw_s, raw_bytes = _best(lambda: probe.raw_get(keys))
    probe.close()

    cold_rounds = iter(range(ROUNDS))

    def cold_load():
        # A fresh store and an empty cache each round: list, GET, decode, fill the cache.
        cache = LocalCache(tmp_path / f"cold-{next(cold_rounds)}", 1024 * _MB)
        store = HistoryStore(settings, cache=cache)
        frames = store.read_many(series, start, end)
        store.close()
        return frames

    cold_s, frames = _best(cold_load)
    loaded_bytes = sum(frame.bytes for frame in frames)
    bars = sum(frame.rows for frame in frames)
    assert loaded_bytes == raw_bytes and len(keys) == SYMBOLS * len(days)

    warm = HistoryStore(settings, cache=LocalCache(tmp_path / "warm", 1024 * _MB))
    warm.read_many(series, start, end)
    hit_s, hit_frames = _best(lambda: warm.read_many(series, start, end))
    warm.close()
    assert sum(frame.rows for frame in hit_frames) == bars

    name = (
        f"store: {SYMBOLS} symbols x {len(days)} days of minute bars (synthesized from real Lean)"
    )
    mb = raw_bytes / _MB
    record(
        Figure(
            f"{name}, cold load MB/s",
            mb / cold_s,
            "MB/s",
            "raw GET of the same objects, same threads",
            mb / raw_s,
            raw_s / cold_s,
            ">= 0.70",
        )
    )
    record(
        Figure(
            f"{name}, cold load bars/s",
            bars / cold_s,
            "bars/s",
            "raw GET of the same bytes, as bars/s",
            bars / raw_s,
            raw_s / cold_s,
            ">= 0.70",
        )
    )
    record(
        Figure(
            f"{name}, cache-hit load bars/s",
            bars / hit_s,
            "bars/s",
            "cold store load",
            bars / cold_s,
            cold_s / hit_s,
            ">= 10x",
        )
    )
