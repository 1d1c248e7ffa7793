"""The console seam: snapshots by cursor, previews that change nothing, line commands."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import pytest

from engine.cli import sim_start_ns
from engine.client import Cursor, LocalClient
from engine.config import load_settings
from engine.core.models import OrderStatus, OrderType, Side, TimeInForce
from engine.node import Engine
from engine.risk.types import RiskCheck

D = Decimal


@pytest.fixture
def client(tmp_path):
    settings = load_settings(env={}, cli={"seed": 4, "symbols": "AAPL,MSFT", "venue.latency_ms": 0})
    engine = Engine(
        settings,
        start_ns=sim_start_ns("2024-03-15", date(2024, 3, 15)),
        data_dir=tmp_path,
        housekeeping=False,
    )
    client = LocalClient(engine, run_feed=False)
    asyncio.run(client.start())
    for _ in range(200):
        engine.driver.step()
    yield client
    asyncio.run(client.stop())


def run(coro):
    return asyncio.run(coro)


def test_snapshot_carries_only_what_changed_since_the_cursor(client):
    first = run(client.snapshot(Cursor()))
    assert {q.symbol for q in first.quotes} == {"AAPL", "MSFT"}
    assert first.book is not None and first.risk is not None
    again = run(client.snapshot(first.cursor))
    assert again.quotes == () and again.book is None and again.risk is None
    client.engine.driver.step()
    later = run(client.snapshot(again.cursor))
    assert len(later.quotes) == 1


def test_preview_of_a_limit_order_reports_distance_notional_and_changes_nothing(client):
    quote = client.engine.market.quote("AAPL")
    price = quote.ask + D("0.05")
    preview = run(client.preview(f"buy 100 aapl lmt {price}"))
    assert preview.ok and preview.error is None
    assert preview.summary == f"buy 100 AAPL lmt {price}"
    assert preview.notional == 100 * price
    assert preview.reference_price == quote.ask
    assert preview.distance_ticks == 5
    assert preview.distance_pct == (price - quote.ask) / quote.ask * 100
    assert client.engine.oms.orders() == []


def test_preview_lists_every_failing_check_and_the_soft_collar(client):
    ask = client.engine.market.quote("AAPL").ask
    preview = run(client.preview(f"buy 100000 AAPL lmt {(ask * D('1.05')).quantize(D('0.01'))}"))
    checks = {v.check for v in preview.violations}
    assert {RiskCheck.MAX_ORDER_QTY, RiskCheck.MAX_ORDER_NOTIONAL, RiskCheck.COLLAR} <= checks
    assert not preview.ok
    soft = run(client.preview(f"buy 10 AAPL lmt {(ask * D('1.03')).quantize(D('0.01'))}"))
    assert soft.needs_confirmation


def test_preview_of_a_typo_points_at_the_bad_token(client):
    preview = run(client.preview("buy 10x AAPL"))
    assert preview.error and "'10x'" in preview.error
    assert preview.error_token == "10x" and preview.error_position == 4


def test_execute_submits_exactly_what_was_typed(client):
    outcome = run(client.execute("buy 100 AAPL lmt 1.00 gtc"))
    assert outcome.ok, outcome.message
    (order,) = client.engine.oms.orders()
    assert (order.side, order.qty, order.symbol, order.type, order.limit_price, order.tif) == (
        Side.BUY, D(100), "AAPL", OrderType.LIMIT, D("1.00"), TimeInForce.GTC,
    )  # fmt: skip
    assert order.id == outcome.order_id


def test_soft_collar_needs_confirmation_then_goes_through(client):
    ask = client.engine.market.quote("MSFT").ask
    line = f"buy 10 MSFT lmt {(ask * D('1.03')).quantize(D('0.01'))}"
    first = run(client.execute(line))
    assert not first.ok and first.needs_confirmation
    assert client.engine.oms.orders() == []
    second = run(client.execute(line, confirmed=True))
    assert second.ok


def test_kill_and_reset_show_in_the_risk_snapshot(client):
    run(client.execute("buy 10 AAPL lmt 1.00 gtc"))
    client.engine.driver.step()
    run(client.kill())
    snap = run(client.snapshot(Cursor()))
    assert snap.risk.kill_engaged
    assert run(client.execute("buy 1 AAPL")).ok is False
    run(client.reset_kill())
    assert run(client.snapshot(Cursor())).risk.kill_engaged is False


def test_bad_line_changes_nothing(client):
    outcome = run(client.execute("bux 10 AAPL"))
    assert not outcome.ok and "'bux'" in outcome.message
    assert client.engine.oms.orders() == []


def test_cancel_from_the_console(client):
    order_id = run(client.execute("buy 10 AAPL lmt 1.00 gtc")).order_id
    for _ in range(5):
        client.engine.driver.step()
    assert run(client.cancel(order_id)).ok
    for _ in range(5):
        client.engine.driver.step()
    assert client.engine.oms.order(order_id).status is OrderStatus.CANCELED


def test_a_refused_second_cancel_is_news_not_an_illegal_transition(client):
    from engine.journal import EventKind

    order_id = run(client.execute("buy 10 AAPL lmt 1.00 gtc")).order_id
    for _ in range(5):
        client.engine.driver.step()
    assert run(client.cancel(order_id)).ok
    assert run(client.cancel(order_id)).ok  # sent before the venue has answered the first
    for _ in range(5):
        client.engine.driver.step()
    assert client.engine.oms.order(order_id).status is OrderStatus.CANCELED
    kinds = {e.kind for e in client.engine.journal.load_events(order_id)}
    assert EventKind.ILLEGAL_TRANSITION not in kinds
    assert any("order_cancel_rejected" in a.message for a in client.engine.alerts)


def test_working_orders_that_add_exposure_hold_buying_power_back(client):
    oms = client.engine.oms
    before = oms.buying_power()
    run(client.execute("buy 100 AAPL lmt 1.50 gtc"))
    for _ in range(5):
        client.engine.driver.step()
    assert oms.buying_power() == before - 150
    run(client.execute("cancel all"))
    for _ in range(5):
        client.engine.driver.step()
    assert oms.buying_power() == before
