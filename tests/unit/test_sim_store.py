"""The sim venue's paper account file: what it holds, when it holds it, and what survives a kill.

Venues run on a real bus, clock and market view over a real SQLite file in a
temporary folder; the file is read back by new venues and by plain sqlite3
connections, as another process would read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from engine.broker.sim import SimBroker, SimVenueConfig
from engine.broker.sim_store import (
    CHECKPOINT_EVERY,
    PAGE_SIZE,
    SCHEMA_VERSION,
    Changes,
    open_account,
)
from engine.core.bus import MessageBus, Topic
from engine.core.clock import NS_PER_MS, NS_PER_SECOND, SimClock
from engine.core.conflate import MarketView
from engine.core.errors import BrokerError
from engine.core.events import Alert, SessionEvent, SessionPhase, Severity
from engine.core.models import (
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderType,
    OrderUpdate,
    Quote,
    Side,
    TimeInForce,
)
from engine.sqlite_rows import FILL_COLUMNS, ORDER_COLUMNS

D = Decimal
SYMBOL = "XYZ"
T0 = 1_700_000_000 * NS_PER_SECOND
LATENCY_NS = 5 * NS_PER_MS  # SimVenueConfig's default 5 ms
INSTRUMENTS = {SYMBOL: Instrument(SYMBOL)}
REPO = Path(__file__).resolve().parents[2]

LIMIT, STOP_LIMIT, TRAILING = OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP

# Runs in a child process: a venue on the file in argv[1] buying and selling one share
# against a fixed quote, printing each fill's id once its update has been published.
CHILD = """
import sys
from decimal import Decimal
from pathlib import Path

from loguru import logger

from engine.broker.sim import SimBroker, SimVenueConfig
from engine.core.bus import MessageBus, Topic
from engine.core.clock import SimClock
from engine.core.conflate import MarketView
from engine.core.models import Instrument, Order, OrderRequest, Quote, Side

logger.remove()
bus = MessageBus()
clock = SimClock(0)
broker = SimBroker(
    bus, clock, MarketView(bus), SimVenueConfig(latency_ms=0), state_path=Path(sys.argv[1]),
    instruments={"XYZ": Instrument("XYZ")},
)
bus.subscribe(Topic.ORDER_UPDATE, lambda u: u.fill and print(u.fill.id, flush=True))
n = 0
while True:
    n += 1
    bus.publish(Topic.QUOTE, Quote("XYZ", clock.now_ns(), Decimal("99.99"), 9, Decimal("100.00"), 9))
    request = OrderRequest("XYZ", Side.BUY if n % 2 else Side.SELL, Decimal(1))
    broker.submit(Order.from_request(request, f"c{n}", clock.now_ns()))
    clock.advance_by(1_000_000)
"""


def make_order(
    side: str,
    qty: str,
    type: OrderType = OrderType.MARKET,
    *,
    limit: str | None = None,
    stop: str | None = None,
    trail_price: str | None = None,
    order_id: str,
) -> Order:
    request = OrderRequest(
        symbol=SYMBOL,
        side=Side(side),
        qty=D(qty),
        type=type,
        tif=TimeInForce.DAY,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
        trail_price=None if trail_price is None else D(trail_price),
    )
    return Order.from_request(request, order_id, T0)


@dataclass
class Venue:
    """A sim venue on a real bus, clock and market view, recording every update it publishes."""

    bus: MessageBus
    clock: SimClock
    broker: SimBroker
    updates: list[OrderUpdate] = field(default_factory=list)

    def quote(self, bid: str, ask: str, size: int = 100) -> None:
        self.bus.publish(
            Topic.QUOTE, Quote(SYMBOL, self.clock.now_ns(), D(bid), size, D(ask), size)
        )

    def submit(self, order: Order) -> None:
        self.broker.submit(order)
        self.step()

    def step(self) -> None:
        """Let the latency pass: commands arrive and every pending report is delivered."""
        self.clock.advance_by(LATENCY_NS)

    def fills(self) -> list[tuple[Decimal, Decimal]]:
        return [(u.fill.qty, u.fill.price) for u in self.updates if u.fill is not None]

    def all_fills(self) -> list[Fill]:
        return asyncio.run(self.broker.fills_since(0))


@pytest.fixture
def venues():
    """Builds venues; after the test, no bus handler may have raised (the bus would hide it)."""
    built: list[Venue] = []

    def build(path: Path, *, reset: bool = False, **config) -> Venue:
        bus = MessageBus()
        clock = SimClock(T0)
        broker = SimBroker(
            bus,
            clock,
            MarketView(bus),
            SimVenueConfig(**config),
            state_path=path,
            instruments=INSTRUMENTS,
            reset=reset,
        )
        venue = Venue(bus, clock, broker)
        bus.subscribe(Topic.ORDER_UPDATE, venue.updates.append)
        built.append(venue)
        return venue

    yield build
    assert [v.bus.handler_errors for v in built] == [0] * len(built)


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "sim-account.sqlite"


def read_only(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A second connection to the file, as another process would open it."""
    return contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True))


# -- what a restart continues -----------------------------------------------------------------


def test_a_new_venue_on_the_same_file_continues_cash_positions_orders_and_fills(venues, path):
    first = venues(path, fee_per_share=D("0.01"))
    first.quote("99.99", "100.00", 500)
    first.submit(make_order("buy", "100", order_id="bought"))
    first.quote("100.99", "101.00", 500)
    first.submit(make_order("sell", "40", order_id="sold"))
    first.submit(make_order("buy", "10", LIMIT, limit="95.00", order_id="resting"))
    second = venues(path)
    account = asyncio.run(second.broker.account())
    # 100000 - 100 * 100.00 - 1.00 fee + 40 * 100.99 - 0.40 fee
    assert account.cash == D("94038.20")
    assert account.account_id == asyncio.run(first.broker.account()).account_id
    [position] = asyncio.run(second.broker.positions())
    # realized (100.99 - 100.00) * 40; fees 1.00 + 0.40
    assert (position.qty, position.avg_cost, position.realized_pnl, position.fees) == (
        60,
        D("100.00"),
        D("39.60"),
        D("1.40"),
    )
    assert asyncio.run(second.broker.open_orders()) == asyncio.run(first.broker.open_orders())
    assert [o.id for o in asyncio.run(second.broker.open_orders())] == ["resting"]
    assert second.all_fills() == first.all_fills()
    assert [(f.order_id, f.qty, f.price) for f in second.all_fills()] == [
        ("bought", 100, D("100.00")),
        ("sold", 40, D("100.99")),
    ]


def test_closed_orders_keep_their_venue_record_across_a_restart(venues, path):
    first = venues(path)
    first.quote("99.99", "100.00")
    first.submit(make_order("buy", "100", order_id="done"))
    second = venues(path)
    before = asyncio.run(first.broker.get_order("done"))
    assert asyncio.run(second.broker.get_order("done")) == before


def test_the_last_equity_set_at_the_close_survives_a_restart(venues, path):
    first = venues(path)
    first.quote("99.99", "100.00")
    first.submit(make_order("buy", "100", order_id="o"))
    first.quote("101.00", "101.02")
    first.bus.publish(
        Topic.SESSION, SessionEvent(first.clock.now_ns(), SessionPhase.CLOSE, "2023-11-14")
    )
    second = venues(path)
    # cash 90000.00 + 100 shares at the mid 101.01
    assert asyncio.run(second.broker.account()).last_equity == D("100101.00")


def test_a_trailing_stops_water_mark_survives_a_restart(venues, path):
    first = venues(path)
    first.quote("100.00", "100.02")  # hwm 100.00, stop 99.50
    first.submit(make_order("sell", "100", TRAILING, trail_price="0.50", order_id="trail"))
    first.quote("101.00", "101.02")  # hwm 101.00, stop 100.50
    second = venues(path)
    # At the stop the moved water mark set; from a fresh mark (100.50) the stop would be 100.00.
    second.quote("100.50", "100.52")
    second.step()
    assert second.fills() == [(100, D("100.50"))]


def test_a_triggered_stop_limit_survives_a_restart_as_a_limit(venues, path):
    first = venues(path)
    first.quote("100.40", "100.45")
    first.submit(make_order("buy", "100", STOP_LIMIT, stop="100.50", limit="100.50", order_id="s"))
    first.quote("100.50", "100.55")  # ask reaches the stop: triggered, but above the limit
    first.step()
    assert first.fills() == []
    second = venues(path)
    second.quote("100.40", "100.49")  # below the stop, within the limit: fills only if triggered
    second.step()
    assert second.fills() == [(100, D("100.49"))]


# -- persisted before published ---------------------------------------------------------------


def test_a_fill_is_in_the_file_before_its_update_is_published(venues, path):
    venue = venues(path)
    seen = []

    def read_the_file(update: OrderUpdate) -> None:
        if update.fill is None:
            return
        with read_only(path) as db:
            seen.append(
                (
                    db.execute(
                        "SELECT qty, price FROM fills WHERE id = ?", (update.fill.id,)
                    ).fetchone(),
                    db.execute("SELECT qty FROM positions WHERE symbol = ?", (SYMBOL,)).fetchone(),
                    db.execute("SELECT status FROM orders WHERE id = ?", ("o",)).fetchone(),
                    db.execute("SELECT cash FROM account").fetchone(),
                )
            )

    venue.bus.subscribe(Topic.ORDER_UPDATE, read_the_file)
    venue.quote("99.90", "100.00")
    venue.submit(make_order("buy", "100", LIMIT, limit="99.95", order_id="o"))
    venue.quote("99.80", "99.90")  # the resting limit fills at the ask, from the quote handler
    venue.step()
    # 100000 - 100 * 99.90
    assert seen == [(("100", "99.90"), ("100",), ("filled",), ("90010.00",))]


def test_an_accepted_order_is_in_the_file_before_its_new_update_is_published(venues, path):
    venue = venues(path)
    seen = []

    def read_the_file(update: OrderUpdate) -> None:
        with read_only(path) as db:
            row = db.execute(
                "SELECT status, broker_order_id FROM orders WHERE id = ?", (update.order_id,)
            ).fetchone()
        seen.append((update.event.value, row))

    venue.bus.subscribe(Topic.ORDER_UPDATE, read_the_file)
    venue.quote("99.90", "100.00")
    venue.submit(make_order("buy", "100", LIMIT, limit="99.00", order_id="o"))
    [update] = venue.updates
    assert seen == [("new", ("new", update.broker_order_id))]


# -- a kill, a refusal, a reset, a damaged file -----------------------------------------------


@pytest.mark.slow
def test_every_fill_published_before_a_sigkill_is_in_the_file(venues, path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    # Past CHECKPOINT_EVERY commits, so the checkpoint thread is at work when the kill lands.
    published = [child.stdout.readline() for _ in range(CHECKPOINT_EVERY + 100)]
    child.send_signal(signal.SIGKILL)
    published += child.stdout.readlines()
    child.wait()
    ids = [line.strip() for line in published if line.endswith("\n")]
    assert len(ids) >= CHECKPOINT_EVERY + 100, child.stderr.read()
    reopened = venues(path)
    fills = reopened.all_fills()
    assert set(ids) <= {f.id for f in fills}
    # Each fill went in with its cash and position in one transaction: they agree with the fills.
    bought = sum((f.qty * f.side.sign for f in fills), D(0))
    spent = sum((f.qty * f.side.sign * f.price for f in fills), D(0))
    account = asyncio.run(reopened.broker.account())
    positions = asyncio.run(reopened.broker.positions())
    assert [p.qty for p in positions] == ([bought] if bought else [])
    assert account.cash == D("100000") - spent


def test_a_write_the_file_refuses_raises_an_error_alert(venues, path):
    venue = venues(path)
    alerts: list[Alert] = []
    venue.bus.subscribe(Topic.ALERT, alerts.append)
    venue.quote("99.99", "100.00")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other_writer:
        other_writer.execute("BEGIN IMMEDIATE")  # holds the write lock
        venue.submit(make_order("buy", "100", order_id="first"))
        other_writer.execute("ROLLBACK")
    assert [a.severity for a in alerts] == [Severity.ERROR]
    assert alerts[0].message.startswith(f"the sim account could not be saved to {path}")


def test_a_refused_write_goes_out_with_the_next_one(venues, path):
    venue = venues(path)
    venue.quote("99.99", "100.00", 500)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other_writer:
        other_writer.execute("BEGIN IMMEDIATE")
        venue.submit(make_order("buy", "100", order_id="first"))
        other_writer.execute("ROLLBACK")
    venue.submit(make_order("buy", "50", order_id="second"))
    reopened = venues(path)
    assert [(f.order_id, f.qty) for f in reopened.all_fills()] == [("first", 100), ("second", 50)]
    assert asyncio.run(reopened.broker.account()).cash == D("85000.00")


def test_reset_replaces_an_account_that_has_fills_and_a_wal(venues, path):
    first = venues(path)
    first.quote("99.99", "100.00")
    first.submit(make_order("buy", "100", order_id="o"))
    venues(path, reset=True, starting_cash=D("5000"))
    with read_only(path) as db:
        assert db.execute("SELECT cash FROM account").fetchall() == [("5000",)]
        assert db.execute("SELECT count(*) FROM fills").fetchone() == (0,)


def test_a_file_from_a_newer_tickdeck_is_a_broker_error(venues, path):
    asyncio.run(venues(path).broker.stop())
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(BrokerError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        venues(path)


def test_a_new_file_carries_the_schema_version(venues, path):
    venues(path)
    with read_only(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


# -- the file on disk -------------------------------------------------------------------------


def test_after_stop_the_database_file_alone_holds_the_account(venues, path, tmp_path):
    venue = venues(path)
    venue.quote("99.99", "100.00")
    venue.submit(make_order("buy", "100", order_id="o"))
    asyncio.run(venue.broker.stop())
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(path, copy)  # without the -wal file beside it
    assert asyncio.run(venues(copy).broker.account()).cash == D("90000.00")


def test_the_wal_is_checkpointed_into_the_database_file_in_the_background(path):
    store, account, _ = open_account(path, D("100000"), reset=False)
    changes = Changes()
    try:
        for _ in range(CHECKPOINT_EVERY):
            changes.account = True
            store.write(account, changes)
            changes.clear()
        # sqlite_master, 4 tables and the positions key's index: 6 pages out of the WAL.
        deadline = time.monotonic() + 10
        while path.stat().st_size < 6 * PAGE_SIZE and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.stat().st_size >= 6 * PAGE_SIZE
    finally:
        store.close()


def test_the_orders_and_fills_tables_have_a_column_for_every_field(path):
    store, _, _ = open_account(path, D("100000"), reset=False)
    store.close()
    with read_only(path) as db:
        for table, columns in (("orders", ORDER_COLUMNS), ("fills", FILL_COLUMNS)):
            names = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            assert set(columns) <= names
