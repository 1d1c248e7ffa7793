"""The attach codec: engine records travel exactly, and nothing else is decoded."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import msgpack
import pytest

from engine.attach.codec import CodecError, decode, encode
from engine.client import Cursor, EngineSnapshot, Outcome
from engine.core.conflate import SymbolSnapshot
from engine.core.events import Alert, Severity
from engine.core.models import OrderRequest, OrderType, Side, TimeInForce
from engine.health import ComponentHealth, HealthSnapshot, Status
from engine.latency import OrderLatency


def _snapshot() -> EngineSnapshot:
    quote = SymbolSnapshot(
        "AAPL",
        3,
        1_710_509_400_000_000_000,
        Decimal("187.25"),
        300,
        Decimal("187.26"),
        200,
        None,
        Decimal("186.00"),
        12_345,
        (Decimal("186.5"), Decimal("187.0")),
    )
    health = HealthSnapshot(
        components=(ComponentHealth("feed", Status.OK, "sim market", None),),
        feed_msgs_per_s=12.5,
        feed_latency_ms=None,
        reconnects=0,
        loop_lag_ms=math.nan,
        loop_lag_p99_ms=0.0,
        bus_errors=0,
        recent_orders=(OrderLatency("td-1", 1, 2, 3, 4, 9, None),),
    )
    return EngineSnapshot(
        cursor=Cursor(3, 2, 1),
        clock_ns=1_710_509_400_000_000_001,
        mode="sim",
        quotes=(quote,),
        book=None,
        risk=None,
        health=health,
        alerts=(Alert(5, Severity.WARNING, "careful"),),
    )


def test_a_snapshot_round_trips_with_decimals_enums_and_nested_tuples():
    snapshot = _snapshot()
    back = decode(encode(snapshot))
    assert back.quotes == snapshot.quotes
    assert back.quotes[0].bid == Decimal("187.25")
    assert isinstance(back.quotes[0].closes, tuple)
    assert back.alerts[0].severity is Severity.WARNING
    assert back.health.components[0].status is Status.OK
    assert back.health.recent_orders == snapshot.health.recent_orders
    assert math.isnan(back.health.loop_lag_ms)


def test_decimals_keep_their_exact_digits():
    assert decode(encode(Decimal("0.1000"))) == Decimal("0.1000")
    assert str(decode(encode(Decimal("0.1000")))) == "0.1000"


def test_an_order_request_and_a_date_round_trip():
    request = OrderRequest(
        "MSFT", Side.SELL, Decimal("5"), OrderType.LIMIT, TimeInForce.GTC, Decimal("401.10")
    )
    assert decode(encode({"request": request, "expiry": date(2024, 4, 19)})) == {
        "request": request,
        "expiry": date(2024, 4, 19),
    }


def test_a_record_the_protocol_does_not_carry_is_refused_when_encoding():
    with pytest.raises(TypeError, match="cannot be sent"):
        encode(object())


def test_an_unknown_record_name_is_rejected_when_decoding():
    forged = msgpack.ExtType(3, msgpack.packb(["Popen", [["rm", "-rf", "/"]]]))
    with pytest.raises(CodecError, match="'Popen' is not a protocol record"):
        decode(msgpack.packb(forged))


def test_a_record_with_the_wrong_number_of_fields_is_rejected():
    forged = msgpack.ExtType(3, msgpack.packb(["Cursor", [1, 2]]))
    with pytest.raises(CodecError, match="a Cursor needs 3 fields"):
        decode(msgpack.packb(forged))


def test_a_bad_decimal_is_rejected_with_a_sentence():
    with pytest.raises(CodecError, match="a decimal field is not a number"):
        decode(msgpack.packb(msgpack.ExtType(1, b"twelve")))


def test_bytes_that_are_not_msgpack_are_rejected():
    with pytest.raises(CodecError, match="not valid msgpack"):
        decode(b"\xc1")


def test_an_outcome_round_trips():
    outcome = Outcome(False, "rejected by risk: too big", needs_confirmation=False)
    assert decode(encode(outcome)) == outcome
