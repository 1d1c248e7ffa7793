"""Alpaca JSON -> engine models: the recorded alpaca-py fixtures parse, and hand-checked values map."""

from __future__ import annotations

import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from engine.alpaca.mapping import (
    OrderIds,
    TradeUpdateError,
    account_from_alpaca,
    bar_from_alpaca,
    error_from_response,
    fill_from_activity,
    instrument_from_alpaca,
    market_clock_from_alpaca,
    option_contract_from_alpaca,
    order_from_alpaca,
    order_update_from_alpaca,
    parse_ts_ns,
    position_from_alpaca,
    quote_from_alpaca,
    trade_from_alpaca,
    trading_day_from_alpaca,
)
from engine.core.errors import BrokerRejected, BrokerUnavailable, RateLimited
from engine.core.models import (
    OrderClass,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradeEvent,
)

FIXTURES_NAME = "alpaca_py/alpaca_py_rest_fixtures.json"


def _fixtures_path() -> Path:
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return Path(os.environ.get("TICKDECK_SAMPLE_DATA", default)).resolve() / FIXTURES_NAME


@pytest.fixture(scope="module")
def fixtures() -> list[dict]:
    path = _fixtures_path()
    if not path.is_file():
        pytest.skip(f"alpaca-py fixtures not found at {path} (set TICKDECK_SAMPLE_DATA)")
    return json.loads(path.read_text())


def _records(fixtures: list[dict], *required: str) -> list[dict]:
    """Every dict in any fixture's body (at any depth) that has all the ``required`` keys."""
    found: list[dict] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if all(key in value for key in required):
                found.append(value)
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    for fixture in fixtures:
        walk(fixture["json"])
    return found


def _series(fixtures: list[dict], key: str, url_part: str) -> list[tuple[str, dict]]:
    """(symbol, record) for every bar/quote/trade series in the stock-data fixtures."""
    out = []
    for fixture in fixtures:
        body = fixture["json"]
        if url_part not in fixture["url_expr"] or not isinstance(body, dict):
            continue
        for symbol, values in (body.get(key) or {}).items():
            for value in values if isinstance(values, list) else [values]:
                out.append((symbol, value))
    return out


# -- the recorded fixtures parse (their numbers are not self-consistent: schema only) -----------


def test_every_fixture_order_parses(fixtures):
    records = _records(fixtures, "client_order_id", "time_in_force", "status")
    orders = [order_from_alpaca(record) for record in records]
    assert len(orders) >= 10
    assert all(order.id and order.broker_order_id for order in orders)


def test_every_fixture_position_parses(fixtures):
    records = _records(fixtures, "avg_entry_price", "qty", "symbol")
    assert records
    assert all(position_from_alpaca(record).symbol for record in records)


def test_every_fixture_trading_account_parses(fixtures):
    records = _records(fixtures, "buying_power", "cash", "equity")
    assert records
    for record in records:
        assert account_from_alpaca(record).buying_power >= 0


def test_every_fixture_asset_parses(fixtures):
    records = _records(fixtures, "tradable", "shortable", "easy_to_borrow", "fractionable")
    assert records
    assert all(instrument_from_alpaca(record).symbol for record in records)


def test_every_fixture_option_contract_parses(fixtures):
    records = _records(fixtures, "strike_price", "expiration_date", "underlying_symbol")
    assert records
    assert all(option_contract_from_alpaca(record).strike > 0 for record in records)


def test_every_fixture_fill_activity_parses(fixtures):
    records = [
        record
        for record in _records(fixtures, "activity_type", "order_id", "price")
        if record["activity_type"] == "FILL"
    ]
    assert records
    assert all(fill_from_activity(record).qty > 0 for record in records)


def test_every_fixture_clock_and_calendar_day_parses(fixtures):
    clocks = _records(fixtures, "is_open", "next_open", "next_close")
    days = _records(fixtures, "date", "open", "close")
    assert clocks and days
    for clock in clocks:
        market_clock_from_alpaca(clock)
    for day in days:
        parsed = trading_day_from_alpaca(day)
        assert parsed.close_ns > parsed.open_ns


def test_every_fixture_stock_bar_quote_and_trade_parses(fixtures):
    bars = _series(fixtures, "bars", "/v2/stocks/bars")
    quotes = _series(fixtures, "quotes", "/v2/stocks/quotes")
    trades = _series(fixtures, "trades", "/v2/stocks/trades")
    assert bars and quotes and trades
    for symbol, record in bars:
        bar_from_alpaca(symbol, record)
    for symbol, record in quotes:
        quote_from_alpaca(symbol, record)
    for symbol, record in trades:
        trade_from_alpaca(symbol, record)


# -- hand-checked values ------------------------------------------------------------------------


def test_timestamps_keep_nanoseconds_and_apply_the_offset():
    # 13:45:04.981350886 at UTC-4 is 17:45:04.981350886 UTC.
    assert parse_ts_ns("2022-04-19T13:45:04.981350886-04:00") == 1_650_390_304_981_350_886


def test_timestamps_with_z_and_no_fraction_are_utc():
    assert parse_ts_ns("1970-01-01T00:00:01Z") == 1_000_000_000


def test_a_malformed_timestamp_is_a_value_error():
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
        parse_ts_ns("yesterday")


_ORDER = {
    "id": "7b08df51-c1ac-453c-99f9-323a5f075f0d",
    "client_order_id": "td-1",
    "created_at": "2023-12-12T22:31:24.668464435Z",
    "updated_at": "2023-12-12T22:31:25Z",
    "submitted_at": "2023-12-12T22:31:24.577215743Z",
    "filled_qty": "0",
    "filled_avg_price": None,
    "limit_price": "150",
    "order_class": "",
    "qty": "2",
    "side": "buy",
    "status": "accepted",
    "symbol": "AAPL",
    "time_in_force": "gtc",
    "type": "limit",
    "extended_hours": False,
}


def test_an_order_maps_ids_prices_and_status():
    order = order_from_alpaca(_ORDER)
    assert (order.id, order.broker_order_id) == ("td-1", "7b08df51-c1ac-453c-99f9-323a5f075f0d")
    assert (order.side, order.type, order.tif) == (Side.BUY, OrderType.LIMIT, TimeInForce.GTC)
    assert (order.qty, order.limit_price, order.status) == (
        Decimal(2),
        Decimal(150),
        OrderStatus.ACCEPTED,
    )
    assert order.order_class is OrderClass.SIMPLE
    assert order.updated_ns == parse_ts_ns("2023-12-12T22:31:25Z")


def test_a_bracket_order_carries_its_leg_prices():
    legs = [
        {**_ORDER, "type": "limit", "limit_price": "120", "side": "sell"},
        {**_ORDER, "type": "stop_limit", "stop_price": "90", "limit_price": "89", "side": "sell"},
    ]
    order = order_from_alpaca({**_ORDER, "order_class": "bracket", "legs": legs})
    assert order.order_class is OrderClass.BRACKET
    assert (order.take_profit_price, order.stop_loss_price, order.stop_loss_limit_price) == (
        Decimal(120),
        Decimal(90),
        Decimal(89),
    )


def test_a_short_position_is_negative():
    position = position_from_alpaca(
        {"symbol": "TSLA", "qty": "3", "side": "short", "avg_entry_price": "200.5"}
    )
    assert (position.qty, position.avg_cost) == (Decimal(-3), Decimal("200.5"))


def test_a_fill_update_carries_the_execution():
    order = {**_ORDER, "status": "filled", "filled_qty": "2", "filled_avg_price": "149.5"}
    update = order_update_from_alpaca(
        {
            "event": "fill",
            "execution_id": "exec-1",
            "order": order,
            "price": "149.5",
            "qty": "2",
            "position_qty": "2",
            "timestamp": "2023-12-12T22:31:26Z",
        }
    )
    assert (update.event, update.status, update.filled_qty) == (
        TradeEvent.FILL,
        OrderStatus.FILLED,
        Decimal(2),
    )
    assert update.fill is not None
    assert (update.fill.id, update.fill.order_id, update.fill.qty, update.fill.price) == (
        "exec-1",
        "td-1",
        Decimal(2),
        Decimal("149.5"),
    )
    assert update.position_qty == Decimal(2)


def test_a_replaced_update_names_the_successor_by_our_id():
    ids = OrderIds()
    ids.expect_replacement("td-1", "td-2")
    update = order_update_from_alpaca(
        {
            "event": "replaced",
            "order": {**_ORDER, "status": "replaced", "replaced_by": "unknown-uuid"},
            "timestamp": "2023-12-12T22:31:26Z",
        },
        ids,
    )
    assert (update.status, update.replaced_by) == (OrderStatus.REPLACED, "td-2")


def test_an_unknown_event_is_a_trade_update_error():
    with pytest.raises(TradeUpdateError, match="unknown trade_updates event 'trade_bust'"):
        order_update_from_alpaca(
            {"event": "trade_bust", "order": _ORDER, "timestamp": "2023-12-12T22:31:26Z"}
        )


def test_an_update_without_timestamp_is_a_trade_update_error():
    with pytest.raises(TradeUpdateError, match="has no timestamp"):
        order_update_from_alpaca({"event": "new", "order": _ORDER})


def test_a_403_becomes_broker_rejected_with_alpacas_message():
    error = error_from_response(403, '{"code": 40310000, "message": "insufficient buying power"}')
    assert isinstance(error, BrokerRejected)
    assert (str(error), error.status, error.code) == ("insufficient buying power", 403, 40310000)


def test_a_429_becomes_rate_limited_with_retry_after():
    error = error_from_response(429, '{"code": 42910000, "message": "rate limit exceeded"}', "2")
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == 2.0


def test_no_answer_becomes_broker_unavailable():
    assert isinstance(error_from_response(None, "connection refused"), BrokerUnavailable)


def test_an_option_contract_maps_strike_expiry_and_size():
    contract = option_contract_from_alpaca(
        {
            "symbol": "AAPL231103C00170000",
            "underlying_symbol": "AAPL",
            "type": "call",
            "style": "american",
            "strike_price": "170",
            "expiration_date": "2023-11-03",
            "size": "100",
            "tradable": True,
            "open_interest": "12",
        }
    )
    assert (contract.strike, contract.expiration, contract.size, contract.open_interest) == (
        Decimal(170),
        date(2023, 11, 3),
        100,
        12,
    )


def test_a_calendar_day_is_new_york_time():
    day = trading_day_from_alpaca({"date": "2022-05-16", "open": "09:30", "close": "16:00"})
    # 09:30 EDT is 13:30 UTC.
    assert day.open_ns == parse_ts_ns("2022-05-16T13:30:00Z")


def _order_json(**fields) -> dict:
    """An Alpaca order in the trading API's response shape (its EquityOrderResponse example)."""
    base = {
        "id": "7b08df51-c1ac-453c-99f9-323a5f075f0d",
        "client_order_id": "td-240315093000-7",
        "created_at": "2024-03-15T13:31:24.668464435Z",
        "updated_at": "2024-03-15T13:31:24.668464435Z",
        "symbol": "AAPL",
        "side": "buy",
        "qty": "100",
        "filled_qty": "0",
        "filled_avg_price": None,
        "type": "limit",
        "order_type": "limit",
        "limit_price": "187",
        "stop_price": None,
        "time_in_force": "gtc",
        "status": "accepted",
        "order_class": "bracket",
        "legs": None,
    }
    return base | fields


def test_alpaca_bracket_legs_take_the_engines_leg_ids():
    take_profit = _order_json(
        id="leg-tp-1", client_order_id="a1b2", side="sell", limit_price="192", status="held"
    )
    stop_loss = _order_json(
        id="leg-sl-1",
        client_order_id="c3d4",
        side="sell",
        type="stop",
        order_type="stop",
        limit_price=None,
        stop_price="184",
        status="held",
    )
    ids = OrderIds()
    entry = order_from_alpaca(_order_json(legs=[take_profit, stop_loss]), ids)
    assert (entry.take_profit_price, entry.stop_loss_price) == (Decimal(192), Decimal(184))
    update = order_update_from_alpaca(
        {
            "event": "fill",
            "timestamp": "2024-03-15T14:02:11.5Z",
            "execution_id": "ex-9",
            "qty": "100",
            "price": "192",
            "order": take_profit | {"status": "filled", "filled_qty": "100"},
        },
        ids,
    )
    assert (update.order_id, update.fill.order_id) == (
        "td-240315093000-7-tp",
        "td-240315093000-7-tp",
    )
    assert ids.broker_id("td-240315093000-7-sl") == "leg-sl-1"
