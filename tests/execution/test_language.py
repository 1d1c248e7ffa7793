"""The order language's algo, bracket and algo-control syntax: parse, round trip and errors."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest

from engine.core.models import OrderClass, OrderType, Side
from engine.execution import IcebergSpec, PovSpec, TwapSpec, VwapSpec
from engine.orders import (
    OrderSyntaxError,
    PauseAlgo,
    ResumeAlgo,
    SubmitAlgo,
    SubmitOrder,
    format_algo,
    format_request,
    parse,
)

D = Decimal


@pytest.mark.parametrize(
    ("line", "spec"),
    [
        ("buy 5000 AAPL twap 30m", TwapSpec(1800)),
        ("buy 5000 AAPL twap 1h30m slices 6", TwapSpec(5400, 6)),
        ("sell 2000 MSFT vwap until 15:30", VwapSpec(until=time(15, 30))),
        ("sell 2000 MSFT vwap 1h", VwapSpec(duration_s=3600)),
        ("buy 3000 NVDA pov 10%", PovSpec(D(10))),
        ("buy 3000 NVDA pov 12.5% min 100 max 500", PovSpec(D("12.5"), D(100), D(500))),
        ("sell 10000 F iceberg 500 lmt 12.10", IcebergSpec(D(500))),
    ],
)
def test_an_algo_line_parses_to_its_spec(line, spec):
    command = parse(line)
    assert isinstance(command, SubmitAlgo)
    assert command.spec == spec


def test_an_algo_line_keeps_the_parent_order_fields():
    command = parse("sell 10000 F iceberg 500 lmt 12.10 gtc")
    request = command.request
    assert (request.side, request.qty, request.symbol) == (Side.SELL, D(10000), "F")
    assert (request.type, request.limit_price) == (OrderType.LIMIT, D("12.10"))


@pytest.mark.parametrize(
    "line",
    [
        "buy 5000 AAPL twap 30m",
        "buy 5000 AAPL twap 1h30m slices 6 lmt 187.50",
        "sell 2000 MSFT vwap until 09:45",
        "sell 2000 MSFT vwap 45s",
        "buy 3000 NVDA pov 12.5% min 100 max 500",
        "sell 10000 F iceberg 500 lmt 12.10 gtc",
    ],
)
def test_an_algo_line_round_trips_through_format_algo(line):
    command = parse(line)
    text = format_algo(command.request, command.spec)
    assert text == line
    assert parse(text) == command


def test_take_profit_and_stop_loss_make_a_bracket():
    request = parse("buy 100 AAPL lmt 187 tp 192 sl 184").request
    assert request.order_class is OrderClass.BRACKET
    assert (request.limit_price, request.take_profit_price, request.stop_loss_price) == (
        D(187),
        D(192),
        D(184),
    )
    assert request.stop_loss_limit_price is None


def test_one_leg_makes_an_oto_and_sll_limits_the_stop():
    request = parse("sell 100 AAPL sl 190 sll 189.5").request
    assert request.order_class is OrderClass.OTO
    assert (request.type, request.stop_loss_price, request.stop_loss_limit_price) == (
        OrderType.MARKET,
        D(190),
        D("189.5"),
    )


def test_oco_is_an_exit_pair_limited_at_its_take_profit():
    request = parse("sell 100 AAPL oco tp 192 sl 184").request
    assert request.order_class is OrderClass.OCO
    assert (request.type, request.limit_price) == (OrderType.LIMIT, D(192))


@pytest.mark.parametrize(
    "line",
    [
        "buy 100 AAPL lmt 187.00 tp 192.00 sl 184.00",
        "buy 100 AAPL tp 192.00",
        "sell 100 AAPL sl 190.00 sll 189.50 gtc",
        "sell 100 AAPL oco tp 192.00 sl 184.00",
    ],
)
def test_a_bracket_line_round_trips_through_format_request(line):
    command = parse(line)
    assert isinstance(command, SubmitOrder)
    assert format_request(command.request) == line
    assert parse(format_request(command.request)) == command


def test_pause_and_resume_name_a_parent():
    assert parse("pause algo-3") == PauseAlgo("algo-3")
    assert parse("RESUME 3") == ResumeAlgo("3")


@pytest.mark.parametrize(
    ("line", "message", "token", "position"),
    [
        ("buy 100 AAPL twap", "'twap' needs a duration such as 30m after it", "", 17),
        (
            "buy 100 AAPL twap 30x",
            "'30x' is not a duration; write it as 30m, 1h, 1h30m or 90s",
            "30x",
            18,
        ),
        ("buy 100 AAPL twap 0m", "'0m' is not a duration; it must be more than zero", "0m", 18),
        ("buy 100 AAPL pov 10", "'pov' needs a percentage such as 10%, got '10'", "10", 17),
        (
            "buy 100 AAPL pov 150%",
            "'150%' is not a participation; it must be above 0% and at most 100%",
            "150%",
            17,
        ),
        ("sell 10 F iceberg 5", "'iceberg' needs a limit price; add lmt PRICE", "iceberg", 10),
        (
            "buy 1 A vwap until 25:00",
            "'25:00' is not a time of day; write it as 15:30",
            "25:00",
            19,
        ),
        ("buy 1 A twap 1m pov 5%", "'pov' gives a second algo", "pov", 16),
        ("buy 1 A min 5 twap 1m", "'min' only goes with pov", "min", 8),
        ("buy 1 A pov 5% slices 3", "'slices' only goes with twap", "slices", 15),
        (
            "buy 1 A twap 1h tp 5",
            "'tp' conflicts with 'twap'; take-profit and stop-loss legs go on single orders",
            "tp",
            16,
        ),
        (
            "buy 1 A twap 1h stp 5",
            "'stp' conflicts with 'twap'; an algo works a market or limit order",
            "stp",
            16,
        ),
        (
            "buy 1 A lmt 187 tp 180 sl 184",
            "the take-profit 180 must be above the stop-loss 184",
            "tp",
            16,
        ),
        ("buy 1 A sll 5", "'sll' needs 'sl PRICE' before it", "sll", 8),
        ("sell 1 A oco tp 5", "'oco' needs both 'tp PRICE' and 'sl PRICE'", "", 17),
        ("buy 1 A stp 5 tp 6", "'tp' needs a market or limit entry order, not a stop", "tp", 14),
        ("pause", "'pause' needs an algo id after it", "", 5),
        ("resume 3 4", "unexpected '4' after '3'", "4", 9),
    ],
)
def test_a_bad_algo_line_names_the_token_and_where_it_is(line, message, token, position):
    with pytest.raises(OrderSyntaxError) as raised:
        parse(line)
    error = raised.value
    assert (str(error), error.token, error.position) == (message, token, position)
