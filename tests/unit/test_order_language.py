"""The order language: what each line means, what each mistake says, and that nothing escapes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.errors import InputError
from engine.core.models import OrderRequest, OrderType, Side, TimeInForce
from engine.orders import (
    CancelAll,
    CancelOrder,
    Flatten,
    Kill,
    OrderSyntaxError,
    ReplaceOrder,
    ResetKill,
    SubmitOrder,
    complete_symbol,
    format_request,
    parse,
)

COMMANDS = (SubmitOrder, CancelOrder, CancelAll, ReplaceOrder, Flatten, Kill, ResetKill)


def request_of(line: str) -> OrderRequest:
    command = parse(line)
    assert isinstance(command, SubmitOrder)
    return command.request


def syntax_error(line: str) -> OrderSyntaxError:
    with pytest.raises(OrderSyntaxError) as caught:
        parse(line)
    return caught.value


# --- orders -----------------------------------------------------------------


def test_a_bare_order_is_a_day_market_order_from_the_keyboard():
    assert request_of("buy 100 AAPL") == OrderRequest(
        symbol="AAPL", side=Side.BUY, qty=Decimal(100), source="manual"
    )


def test_b_and_s_are_short_for_buy_and_sell():
    assert request_of("b 1 aapl").side is Side.BUY
    assert request_of("s 1 aapl").side is Side.SELL


def test_symbols_are_upper_cased():
    assert request_of("buy 1 brk.b").symbol == "BRK.B"


def test_a_bare_price_after_the_symbol_makes_a_limit_order():
    request = request_of("b 100 aapl 187.50")
    assert (request.type, request.limit_price) == (OrderType.LIMIT, Decimal("187.50"))


@pytest.mark.parametrize("keyword", ["lmt", "limit", "@", "LMT"])
def test_every_limit_keyword_sets_the_limit_price(keyword):
    request = request_of(f"buy 100 aapl {keyword} 187.5")
    assert (request.type, request.limit_price) == (OrderType.LIMIT, Decimal("187.5"))


def test_at_sign_may_touch_the_symbol_and_the_price():
    assert request_of("buy 100 aapl@187.5").limit_price == Decimal("187.5")


def test_a_price_may_start_with_a_dollar_sign():
    assert request_of("buy 1 aapl lmt $187.25").limit_price == Decimal("187.25")


def test_prices_keep_their_exact_decimal_value():
    assert request_of("buy 1 penny lmt 0.0001").limit_price == Decimal("0.0001")


@pytest.mark.parametrize("keyword", ["stp", "stop"])
def test_a_stop_price_alone_makes_a_stop_order(keyword):
    request = request_of(f"sell 50 MSFT {keyword} 400")
    assert (request.type, request.stop_price, request.limit_price) == (
        OrderType.STOP,
        Decimal(400),
        None,
    )


def test_a_stop_and_a_limit_make_a_stop_limit_order():
    request = request_of("sell 50 MSFT stp 400 lmt 399.5")
    assert (request.type, request.stop_price, request.limit_price) == (
        OrderType.STOP_LIMIT,
        Decimal(400),
        Decimal("399.5"),
    )


def test_trail_with_a_percent_is_a_trailing_stop_by_percent():
    request = request_of("sell 10 NVDA trail 1.5%")
    assert (request.type, request.trail_percent, request.trail_price) == (
        OrderType.TRAILING_STOP,
        Decimal("1.5"),
        None,
    )


def test_trail_with_an_amount_is_a_trailing_stop_by_dollars():
    request = request_of("sell 10 NVDA trail 0.50")
    assert (request.type, request.trail_price, request.trail_percent) == (
        OrderType.TRAILING_STOP,
        Decimal("0.50"),
        None,
    )


@pytest.mark.parametrize("keyword", ["mkt", "market", "MKT"])
def test_market_may_be_said_explicitly(keyword):
    assert request_of(f"buy 100 aapl {keyword}").type is OrderType.MARKET


@pytest.mark.parametrize("tif", list(TimeInForce))
def test_every_time_in_force_is_understood(tif):
    assert request_of(f"buy 1 aapl 10 {tif.value}").tif is tif


def test_time_in_force_may_come_before_the_price():
    request = request_of("buy 1 aapl gtc lmt 10")
    assert (request.tif, request.limit_price) == (TimeInForce.GTC, Decimal(10))


def test_ext_asks_for_extended_hours():
    assert request_of("buy 1 aapl 10 ext").extended_hours is True


def test_orders_are_not_extended_hours_unless_asked():
    assert request_of("buy 1 aapl 10").extended_hours is False


def test_thousands_commas_are_allowed_in_a_quantity():
    assert request_of("buy 1,000 aapl").qty == Decimal(1000)


def test_fractional_quantities_are_left_for_risk_to_judge():
    assert request_of("buy 0.5 aapl").qty == Decimal("0.5")


def test_keywords_and_symbols_ignore_case():
    assert request_of("BUY 100 AAPL LMT 187.50 GTC") == request_of("buy 100 aapl lmt 187.50 gtc")


def test_extra_spaces_do_not_matter():
    assert request_of("  buy   100\taapl   lmt  1 ") == request_of("buy 100 aapl lmt 1")


def test_a_keyword_in_the_symbol_position_is_a_symbol():
    assert request_of("buy 10 lmt lmt 5").symbol == "LMT"


# --- other commands -------------------------------------------------------------


def test_cancel_with_an_id_cancels_that_order_and_keeps_the_ids_case():
    assert parse("cancel Ab-12") == CancelOrder("Ab-12")


@pytest.mark.parametrize("line", ["cancel all", "CANCEL ALL"])
def test_cancel_all_cancels_every_order(line):
    assert parse(line) == CancelAll()


def test_replace_changes_only_the_fields_given():
    assert parse("replace o-7 qty 50") == ReplaceOrder("o-7", Decimal(50), None, None)


def test_replace_takes_its_changes_in_any_order():
    assert parse("replace o-7 px 187.40 qty 1,000") == ReplaceOrder(
        "o-7", Decimal(1000), Decimal("187.40"), None
    )


@pytest.mark.parametrize("keyword", ["px", "price", "lmt", "limit", "@"])
def test_replace_price_synonyms_set_the_limit_price(keyword):
    assert parse(f"replace o-7 {keyword} 12").limit_price == Decimal(12)


@pytest.mark.parametrize("keyword", ["stp", "stop"])
def test_replace_stop_sets_the_stop_price(keyword):
    assert parse(f"replace o-7 {keyword} 12") == ReplaceOrder("o-7", None, None, Decimal(12))


def test_flatten_a_symbol_closes_that_position():
    assert parse("flatten aapl") == Flatten("AAPL")


def test_flatten_all_closes_every_position():
    assert parse("flatten all") == Flatten(None)


def test_kill_engages_the_kill_switch():
    assert parse("kill") == Kill()


def test_reset_kill_releases_the_kill_switch():
    assert parse("Reset-Kill") == ResetKill()


# --- mistakes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message", "token", "position"),
    [
        (
            "bux 100 aapl",
            "'bux' is not an order verb; expected buy, sell, cancel, replace, flatten, "
            "pause, resume, kill or reset-kill",
            "bux",
            0,
        ),
        ("buy 10x aapl", "'10x' is not a quantity", "10x", 4),
        ("buy", "missing quantity after 'buy'", "", 3),
        ("buy 100", "missing symbol after the quantity", "", 7),
        ("buy 100 aapl lmt", "'lmt' needs a price after it", "", 16),
        ("buy 100 aapl lmt x", "'lmt' needs a price after it, got 'x'", "x", 17),
        (
            "sell 10 nvda trail",
            "a trailing stop needs an amount or a percent after 'trail'",
            "",
            18,
        ),
        ("buy 1 aapl gtc 10 gtc", "'gtc' given twice", "gtc", 18),
        ("buy 1 aapl 10 foo", "unexpected 'foo' after the order", "foo", 14),
        ("buy 1 aapl day gtc", "'gtc' conflicts with 'day'; give one time in force", "gtc", 15),
        ("buy 1k aapl", "'1k' is not a quantity; write it out, as in 1000 or 1,000", "1k", 4),
        ("buy 0 aapl", "'0' is not a quantity; it must be more than zero", "0", 4),
        ("buy 1 aapl 0.00", "'0.00' is not a price; it must be more than zero", "0.00", 11),
        ("buy 1 aapl 1.2.3", "'1.2.3' is not a price", "1.2.3", 11),
        ("buy 1 aapl 10 lmt 11", "'lmt' gives a second limit price", "lmt", 14),
        ("buy 1 aapl mkt 10", "'10' conflicts with 'mkt'; a market order has no price", "10", 15),
        (
            "sell 1 aapl trail 1% stp 9",
            "'stp' conflicts with 'trail'; a trailing stop takes no limit or stop price",
            "stp",
            21,
        ),
        (
            "buy 1 12ab",
            "'12ab' is not a symbol; expected a letter then up to nine letters, digits, '.' or '/'",
            "12ab",
            6,
        ),
        ("cancel", "'cancel' needs an order id or 'all' after it", "", 6),
        ("replace qty 5", "'replace' needs an order id before 'qty'", "qty", 8),
        ("replace o-7", "'replace' needs something to change: qty, px or stp", "", 11),
        ("replace o-7 qty 1 qty 2", "'qty' given twice", "qty", 18),
        (
            "replace o-7 size 5",
            "unexpected 'size' in a replace; expected qty, px or stp",
            "size",
            12,
        ),
        ("flatten", "'flatten' needs a symbol or 'all' after it", "", 7),
        ("kill now", "unexpected 'now' after 'kill'", "now", 5),
    ],
)
def test_a_bad_line_names_the_bad_token_and_where_it_is(line, message, token, position):
    error = syntax_error(line)
    assert (str(error), error.token, error.position) == (message, token, position)


@pytest.mark.parametrize("line", ["", "   \t "])
def test_an_empty_line_gets_its_own_sentence(line):
    error = syntax_error(line)
    assert str(error) == "the order line is empty; type a command such as 'buy 100 AAPL'"


def test_an_order_syntax_error_is_an_input_error():
    assert isinstance(syntax_error("bux"), InputError)


def test_a_symbol_longer_than_ten_characters_is_refused():
    assert syntax_error("buy 1 ABCDEFGHIJK").token == "ABCDEFGHIJK"


def test_non_ascii_letters_are_not_keywords():
    # The Kelvin sign lower-cases to "k"; it must not spell "kill".
    assert syntax_error("\u212aill").token == "\u212aill"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_an_order_syntax_error(line):
    try:
        command = parse(line)
    except OrderSyntaxError as error:
        assert line[error.position :].startswith(error.token)
        return
    assert isinstance(command, COMMANDS)


_WORDS = st.sampled_from(
    ["buy", "b", "s", "sell", "100", "1,000", "aapl", "lmt", "@", "stp", "trail", "1.5%", "$2",
     "gtc", "day", "mkt", "ext", "cancel", "all", "replace", "qty", "px", "flatten", "kill", "0"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, max_size=8))
def test_any_sequence_of_keywords_parses_or_raises_an_order_syntax_error(words):
    try:
        command = parse(" ".join(words))
    except OrderSyntaxError:
        return
    assert isinstance(command, COMMANDS)


# --- format_request round trip --------------------------------------------------

_PRICES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100_000), places=4)
_QTYS = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1_000_000), places=3)
_SYMBOLS = st.from_regex(r"[A-Z][A-Z0-9./]{0,9}", fullmatch=True)


@st.composite
def order_requests(draw) -> OrderRequest:
    order_type = draw(st.sampled_from(list(OrderType)))
    limit = draw(_PRICES) if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = draw(_PRICES) if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    trail_price = trail_percent = None
    if order_type is OrderType.TRAILING_STOP:
        if draw(st.booleans()):
            trail_percent = draw(_PRICES)
        else:
            trail_price = draw(_PRICES)
    return OrderRequest(
        symbol=draw(_SYMBOLS),
        side=draw(st.sampled_from(list(Side))),
        qty=draw(_QTYS),
        type=order_type,
        tif=draw(st.sampled_from(list(TimeInForce))),
        limit_price=limit,
        stop_price=stop,
        trail_price=trail_price,
        trail_percent=trail_percent,
        extended_hours=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(order_requests())
def test_a_formatted_request_parses_back_to_the_same_request(request):
    assert request_of(format_request(request)) == request


@settings(max_examples=200, deadline=None)
@given(order_requests())
def test_parsing_ignores_case(request):
    line = format_request(request)
    mixed = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(line))
    assert request_of(line.upper()) == request_of(line.lower()) == request_of(mixed)


def test_format_request_writes_the_canonical_line():
    request = OrderRequest(
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(100),
        type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        limit_price=Decimal("187.5"),
    )
    assert format_request(request) == "buy 100 AAPL lmt 187.50 gtc"


def test_format_request_writes_stop_before_limit_and_leaves_out_day():
    request = OrderRequest(
        symbol="MSFT",
        side=Side.SELL,
        qty=Decimal(50),
        type=OrderType.STOP_LIMIT,
        stop_price=Decimal(400),
        limit_price=Decimal("399.5"),
    )
    assert format_request(request) == "sell 50 MSFT stp 400.00 lmt 399.50"


def test_format_request_writes_a_percent_trail_with_a_percent_sign():
    request = OrderRequest(
        symbol="NVDA",
        side=Side.SELL,
        qty=Decimal(10),
        type=OrderType.TRAILING_STOP,
        trail_percent=Decimal("1.50"),
    )
    assert format_request(request) == "sell 10 NVDA trail 1.5%"


def test_format_request_refuses_a_limit_order_without_a_price():
    request = OrderRequest(symbol="AAPL", side=Side.BUY, qty=Decimal(1), type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="no limit price"):
        format_request(request)


# --- completion ---------------------------------------------------------------


def test_complete_symbol_lists_matches_sorted_and_ignores_case():
    assert complete_symbol("a", ["MSFT", "AMZN", "AAPL", "aal"]) == ["AAL", "AAPL", "AMZN"]


def test_complete_symbol_with_no_match_is_empty():
    assert complete_symbol("ZZ", ["AAPL"]) == []


def test_complete_symbol_lists_each_symbol_once():
    assert complete_symbol("", ["aapl", "AAPL"]) == ["AAPL"]
