"""The SQLite journal: exact round trips, idempotent fills, commit-before-return, crash safety."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from engine.core.models import (
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from engine.journal import SCHEMA_VERSION, EventKind, Journal, JournalError

D = Decimal
REPO = Path(__file__).resolve().parents[2]


def full_order(order_id: str = "td-1") -> Order:
    """An order with every optional field set, and Decimals whose trailing zeros matter."""
    return Order(
        id=order_id,
        symbol="AAPL",
        side=Side.SELL,
        qty=D("100.000"),
        type=OrderType.STOP_LIMIT,
        tif=TimeInForce.GTC,
        status=OrderStatus.PARTIALLY_FILLED,
        created_ns=1_710_509_400_000_000_001,
        updated_ns=1_710_509_400_500_000_002,
        limit_price=D("187.5000"),
        stop_price=D("187.60"),
        trail_price=D("0.25"),
        trail_percent=D("1.5"),
        filled_qty=D("40"),
        filled_avg_price=D("187.512345"),
        broker_order_id="b-77",
        extended_hours=True,
        source="bot:momentum",
        parent_id="algo-3",
        replaces="td-0",
        replaced_by="td-2",
        reason="a reason",
    )


def bare_order(order_id: str) -> Order:
    return Order(
        id=order_id,
        symbol="MSFT",
        side=Side.BUY,
        qty=D(5),
        type=OrderType.MARKET,
        tif=TimeInForce.DAY,
        status=OrderStatus.PENDING_NEW,
        created_ns=1,
        updated_ns=1,
    )


def a_fill(fill_id: str = "x-1") -> Fill:
    return Fill(fill_id, "td-1", "AAPL", Side.SELL, D("40"), D("187.5100"), 123, D("0.0040"))


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "journal.sqlite"


def test_orders_round_trip_exactly_through_close_and_reopen(path):
    order = full_order()
    with closing(Journal(path)) as journal:
        journal.save_order(order)
    with closing(Journal(path)) as journal:
        (loaded,) = journal.load_orders()
    assert loaded == order
    assert (str(loaded.limit_price), str(loaded.qty)) == ("187.5000", "100.000")


def test_orders_with_no_optional_fields_round_trip(path):
    with closing(Journal(path)) as journal:
        journal.save_order(bare_order("a"))
    with closing(Journal(path)) as journal:
        assert journal.load_orders() == [bare_order("a")]


def test_saving_an_order_again_updates_it_in_place():
    journal = Journal(":memory:")
    journal.save_order(bare_order("a"))
    journal.save_order(bare_order("b"))
    changed = bare_order("a")
    changed.status = OrderStatus.FILLED
    journal.save_order(changed)
    assert [(o.id, o.status) for o in journal.load_orders()] == [
        ("a", OrderStatus.FILLED),
        ("b", OrderStatus.PENDING_NEW),
    ]


def test_fills_round_trip_exactly(path):
    with closing(Journal(path)) as journal:
        journal.add_fill(a_fill())
    with closing(Journal(path)) as journal:
        assert journal.load_fills() == [a_fill()]


def test_a_fill_with_a_known_execution_id_is_not_written_twice():
    journal = Journal(":memory:")
    first, second = journal.add_fill(a_fill()), journal.add_fill(a_fill())
    assert (first, second, len(journal.load_fills())) == (True, False, 1)


def test_events_are_appended_in_order_and_filter_by_order():
    journal = Journal(":memory:")
    journal.add_event(10, EventKind.SUBMIT, "a", bare_order("a"))
    journal.add_event(20, EventKind.CANCEL_REQUEST, "b")
    journal.add_event(30, EventKind.UPDATE, "a", {"qty": D("1.50")})
    assert [(e.ts_ns, e.kind) for e in journal.load_events()] == [
        (10, EventKind.SUBMIT),
        (20, EventKind.CANCEL_REQUEST),
        (30, EventKind.UPDATE),
    ]
    assert [e.payload for e in journal.load_events("a")][1] == '{"qty":"1.50"}'


def test_rejections_round_trip_with_their_request(path):
    request = OrderRequest(
        "AAPL", Side.BUY, D("10"), OrderType.LIMIT, limit_price=D("1.005"), source="bot:x"
    )
    with closing(Journal(path)) as journal:
        journal.add_rejection(5, request, "limit price 1.005 is off the $0.01 tick grid")
    with closing(Journal(path)) as journal:
        (rejection,) = journal.load_rejections()
    assert (rejection.ts_ns, rejection.request, rejection.reason) == (
        5,
        request,
        "limit price 1.005 is off the $0.01 tick grid",
    )


def test_load_rejections_with_a_limit_keeps_the_most_recent_oldest_first():
    journal = Journal(":memory:")
    for n in range(5):
        journal.add_rejection(n, OrderRequest("AAPL", Side.BUY, D(n + 1)), f"r{n}")
    assert [r.reason for r in journal.load_rejections(limit=2)] == ["r3", "r4"]


def test_kv_returns_what_was_set_and_the_default_otherwise():
    journal = Journal(":memory:")
    journal.set_kv("order_seq", "41")
    journal.set_kv("order_seq", "42")
    assert (journal.get_kv("order_seq"), journal.get_kv("missing", "d")) == ("42", "d")


def test_each_write_is_committed_before_it_returns(path):
    journal = Journal(path)
    journal.save_order(bare_order("a"))
    other = sqlite3.connect(path)
    assert other.execute("SELECT id FROM orders").fetchall() == [("a",)]
    other.close()
    journal.close()


def test_a_transaction_commits_its_writes_together_at_the_end(path):
    journal = Journal(path)
    other = sqlite3.connect(path)
    with journal.transaction():
        journal.save_order(bare_order("a"))
        journal.add_event(1, EventKind.SUBMIT, "a")
        seen_inside = other.execute("SELECT count(*) FROM orders").fetchone()[0]
    seen_after = other.execute("SELECT count(*) FROM orders").fetchone()[0]
    other.close()
    journal.close()
    assert (seen_inside, seen_after) == (0, 1)


def test_a_failed_transaction_keeps_none_of_its_writes():
    journal = Journal(":memory:")
    with pytest.raises(RuntimeError), journal.transaction():
        journal.save_order(bare_order("a"))
        raise RuntimeError("boom")
    assert journal.load_orders() == []


def test_the_journal_runs_in_wal_mode(path):
    Journal(path).close()
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_a_new_journal_is_at_the_current_schema_version():
    assert Journal(":memory:").schema_version == SCHEMA_VERSION


def test_a_journal_from_a_newer_schema_is_refused(path):
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer than this tickdeck"):
        Journal(path)


def test_an_unknown_synchronous_mode_is_refused(path):
    with pytest.raises(JournalError, match="synchronous mode 'sometimes'"):
        Journal(path, synchronous="sometimes")


def test_the_journal_creates_its_folder(tmp_path):
    path = tmp_path / "deep" / "er" / "journal.sqlite"
    Journal(path).close()
    assert path.exists()


def test_writes_survive_a_kill_9_of_the_writing_process(path):
    script = textwrap.dedent(
        f"""
        import os, signal
        from decimal import Decimal
        from engine.core.models import Fill, Side
        from engine.journal import EventKind, Journal
        journal = Journal({str(path)!r})
        for n in range(50):
            with journal.transaction():
                fill = Fill(f"x{{n}}", "o", "AAPL", Side.BUY, Decimal(1), Decimal("1.01"), n)
                journal.add_fill(fill)
                journal.add_event(n, EventKind.UPDATE, "o")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=False, timeout=60)
    assert result.returncode == -9
    with closing(Journal(path)) as journal:
        assert [f.id for f in journal.load_fills()] == [f"x{n}" for n in range(50)]
