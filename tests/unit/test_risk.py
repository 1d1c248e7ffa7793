"""Pre-trade risk: each check accepts and rejects with its numbers; windows; the kill switch."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.core.clock import NS_PER_MS, SimClock, datetime_to_ns
from engine.core.conflate import MarketView
from engine.core.models import (
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    Trade,
)
from engine.core.prices import ZERO
from engine.risk import (
    KillSwitch,
    KillSwitchState,
    RiskCheck,
    RiskConfig,
    RiskDecision,
    RiskEngine,
    RiskViolation,
    is_risk_reducing,
)

D = Decimal
T0 = datetime_to_ns(datetime(2013, 10, 7, 14, 31, 5, tzinfo=UTC))  # 10:31:05 in New York
_ids = itertools.count(1)
PAPER_BUYING_POWER = D(100_000)

INSTRUMENTS = {
    "AAPL": Instrument("AAPL", fractionable=True),
    "IBM": Instrument("IBM", fractionable=False),
    "PENNY": Instrument("PENNY"),
    "EVEN": Instrument("EVEN"),
    "LAST": Instrument("LAST"),
    "NOQUOTE": Instrument("NOQUOTE"),
    "HALT": Instrument("HALT", tradable=False),
    "NOSHORT": Instrument("NOSHORT", shortable=False),
    "HTB": Instrument("HTB", easy_to_borrow=False),
}


@dataclass
class Book:
    """A RiskContext over plain values, as the OMS would present its book."""

    positions: dict[str, Decimal] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    power: Decimal = PAPER_BUYING_POWER
    gross: Decimal = ZERO
    pnl: Decimal = ZERO

    def position_qty(self, symbol: str) -> Decimal:
        return self.positions.get(symbol, ZERO)

    def open_orders(self) -> list[Order]:
        return self.orders

    def buying_power(self) -> Decimal:
        return self.power

    def gross_exposure(self) -> Decimal:
        return self.gross

    def day_pnl(self) -> Decimal:
        return self.pnl

    def instrument(self, symbol: str) -> Instrument | None:
        return INSTRUMENTS.get(symbol)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def market() -> MarketView:
    view = MarketView()
    for symbol, bid, ask in [
        ("AAPL", "187.05", "187.10"),
        ("IBM", "185.00", "185.02"),
        ("PENNY", "0.5010", "0.5013"),
        ("EVEN", "99.99", "100.00"),
        ("HALT", "20.00", "20.01"),
        ("NOSHORT", "30.00", "30.01"),
        ("HTB", "40.00", "40.01"),
    ]:
        view.on_quote(Quote(symbol, T0, D(bid), 100, D(ask), 100))
    view.on_trade(Trade("LAST", T0, D("50.25"), 100))
    return view


@pytest.fixture
def book() -> Book:
    return Book()


@pytest.fixture
def make_risk(clock, market):
    def make(**limits) -> RiskEngine:
        return RiskEngine(RiskConfig(**limits), clock, market)

    return make


@pytest.fixture
def risk(make_risk) -> RiskEngine:
    return make_risk()


def buy(qty, symbol="AAPL", limit=None, **fields) -> OrderRequest:
    return _request(Side.BUY, qty, symbol, limit, fields)


def sell(qty, symbol="AAPL", limit=None, **fields) -> OrderRequest:
    return _request(Side.SELL, qty, symbol, limit, fields)


def _request(side, qty, symbol, limit, fields) -> OrderRequest:
    if limit is not None:
        fields.setdefault("type", OrderType.LIMIT)
        fields["limit_price"] = D(limit)
    return OrderRequest(symbol, side, D(qty), **fields)


def working(symbol, side, qty, filled="0") -> Order:
    return Order(
        id=f"w{next(_ids)}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        type=OrderType.LIMIT,
        tif=TimeInForce.DAY,
        status=OrderStatus.NEW,
        created_ns=T0,
        updated_ns=T0,
        limit_price=D("1.00"),
        filled_qty=D(filled),
    )


def only(decision: RiskDecision, check: RiskCheck) -> RiskViolation:
    """The one violation of ``check`` in ``decision``."""
    found = [v for v in decision.violations if v.check is check]
    assert len(found) == 1, decision.violations
    return found[0]


def checks(decision: RiskDecision) -> list[RiskCheck]:
    return [v.check for v in decision.violations]


# -- a clean order -------------------------------------------------------------------------


def test_a_plain_limit_buy_inside_every_limit_is_accepted(risk, book):
    decision = risk.check(buy(100, limit="187.10"), book)
    assert decision.violations == ()
    assert decision.ok
    assert decision.ts_ns == T0


def test_a_plain_market_sell_of_a_long_position_is_accepted(risk, book):
    book.positions["AAPL"] = D(100)
    assert risk.check(sell(100), book).ok


# -- symbol --------------------------------------------------------------------------------


def test_an_unknown_symbol_is_rejected(risk, book):
    decision = risk.check(buy(10, "ZZZZ", limit="10.00"), book)
    assert only(decision, RiskCheck.SYMBOL).message == "ZZZZ is not a known symbol"
    assert not decision.ok


def test_an_untradable_symbol_is_rejected(risk, book):
    decision = risk.check(buy(10, "HALT", limit="20.01"), book)
    assert checks(decision) == [RiskCheck.SYMBOL]
    assert decision.reason == "HALT is not tradable"


# -- quantity ------------------------------------------------------------------------------


@pytest.mark.parametrize("qty", ["0", "-5"])
def test_a_quantity_that_is_not_positive_is_rejected(risk, book, qty):
    decision = risk.check(buy(qty, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.QUANTITY]
    assert decision.reason == f"quantity {qty} must be a positive number"


def test_a_fractional_quantity_of_a_non_fractionable_symbol_is_rejected(risk, book):
    decision = risk.check(buy("0.5", "IBM"), book)
    assert checks(decision) == [RiskCheck.QUANTITY]
    assert decision.reason == "IBM does not trade fractional shares (quantity 0.5)"


def test_a_fractional_market_day_order_of_a_fractionable_symbol_is_accepted(risk, book):
    assert risk.check(buy("0.5"), book).ok


@pytest.mark.parametrize(
    "request_",
    [
        buy("0.5", limit="187.10", tif=TimeInForce.GTC),
        buy("0.5", type=OrderType.STOP, stop_price=D("190.00")),
    ],
    ids=["gtc-limit", "day-stop"],
)
def test_a_fractional_quantity_only_goes_on_market_or_limit_day_orders(risk, book, request_):
    decision = risk.check(request_, book)
    assert checks(decision) == [RiskCheck.QUANTITY]
    assert decision.reason == (
        "fractional quantity 0.5 is allowed only on market or limit DAY orders"
    )


# -- price shape ---------------------------------------------------------------------------


def test_a_limit_order_without_a_limit_price_is_rejected(risk, book):
    decision = risk.check(buy(100, type=OrderType.LIMIT), book)
    assert checks(decision) == [RiskCheck.PRICE]
    assert decision.reason == "a limit order needs a limit price"


def test_a_limit_price_that_is_not_positive_is_rejected(risk, book):
    decision = risk.check(buy(100, limit="0"), book)
    assert checks(decision) == [RiskCheck.PRICE]
    assert decision.reason == "limit price 0 must be positive"


def test_a_market_order_with_a_limit_price_is_rejected(risk, book):
    decision = risk.check(buy(100, limit="187.10", type=OrderType.MARKET), book)
    assert checks(decision) == [RiskCheck.PRICE]
    assert decision.reason == "a market order takes no limit price"


def test_a_stop_limit_with_both_prices_is_accepted(risk, book):
    request = buy(100, limit="190.50", type=OrderType.STOP_LIMIT, stop_price=D("190.00"))
    assert risk.check(request, book).ok


def test_a_trailing_stop_with_one_trail_is_accepted(risk, book):
    book.positions["AAPL"] = D(100)
    request = sell(100, type=OrderType.TRAILING_STOP, trail_percent=D("1.5"))
    assert risk.check(request, book).ok


def test_a_trailing_stop_with_both_trails_is_rejected(risk, book):
    book.positions["AAPL"] = D(100)
    request = sell(100, type=OrderType.TRAILING_STOP, trail_percent=D("1.5"), trail_price=D("2.00"))
    decision = risk.check(request, book)
    assert checks(decision) == [RiskCheck.PRICE]
    assert decision.reason == "a trailing stop takes a trail price or a trail percent, not both"


# -- tick grid -----------------------------------------------------------------------------


def test_a_limit_price_off_the_penny_grid_is_rejected(risk, book):
    decision = risk.check(buy(100, limit="187.123"), book)
    assert checks(decision) == [RiskCheck.TICK]
    assert decision.reason == "limit price 187.123 is off the $0.01 tick grid"


def test_a_stop_price_off_the_penny_grid_is_rejected(risk, book):
    decision = risk.check(buy(100, type=OrderType.STOP, stop_price=D("190.005")), book)
    assert checks(decision) == [RiskCheck.TICK]
    assert decision.reason == "stop price 190.005 is off the $0.01 tick grid"


def test_a_sub_penny_limit_below_one_dollar_is_accepted(risk, book):
    assert risk.check(buy(1_000, "PENNY", limit="0.5012"), book).ok


# -- shorting ------------------------------------------------------------------------------


def test_a_short_sale_of_a_shortable_symbol_is_accepted_by_default(risk, book):
    assert risk.check(sell(100), book).ok


def test_a_short_sale_is_rejected_when_shorting_is_off(make_risk, book):
    decision = make_risk(allow_short=False).check(sell(100), book)
    assert checks(decision) == [RiskCheck.SHORTABLE]
    assert decision.reason == (
        "selling 100 AAPL would take the position to -100 shares, and shorting is turned off"
    )


def test_selling_a_long_position_is_accepted_when_shorting_is_off(make_risk, book):
    book.positions["AAPL"] = D(100)
    assert make_risk(allow_short=False).check(sell(100), book).ok


def test_working_sells_count_toward_going_short(make_risk, book):
    book.positions["AAPL"] = D(100)
    book.orders.append(working("AAPL", Side.SELL, 60))
    decision = make_risk(allow_short=False).check(sell(50), book)
    assert checks(decision) == [RiskCheck.SHORTABLE]
    assert decision.reason == (
        "selling 50 AAPL would take the position to -10 shares counting 60 working to sell, "
        "and shorting is turned off"
    )


def test_a_short_sale_of_a_non_shortable_symbol_is_rejected(risk, book):
    decision = risk.check(sell(10, "NOSHORT"), book)
    assert checks(decision) == [RiskCheck.SHORTABLE]
    assert decision.reason == (
        "selling 10 NOSHORT would take the position to -10 shares, and NOSHORT is not shortable"
    )


def test_a_short_sale_of_a_hard_to_borrow_symbol_is_rejected(risk, book):
    decision = risk.check(sell(10, "HTB"), book)
    assert only(decision, RiskCheck.SHORTABLE).message.endswith("and HTB is hard to borrow")


# -- max order quantity --------------------------------------------------------------------


def test_an_order_at_the_max_order_quantity_is_accepted(risk, book):
    assert risk.check(buy(10_000, "PENNY"), book).ok


def test_an_order_above_the_max_order_quantity_is_rejected(risk, book):
    decision = risk.check(buy(10_001, "PENNY"), book)
    assert checks(decision) == [RiskCheck.MAX_ORDER_QTY]
    assert decision.reason == "order quantity 10,001 is above the max order quantity of 10,000"


# -- max order notional --------------------------------------------------------------------


def test_an_order_under_the_max_order_notional_is_accepted(risk, book):
    book.power = D(1_000_000)
    assert risk.check(buy(1_336, limit="187.10"), book).ok  # $249,965.60


def test_an_order_above_the_max_order_notional_is_rejected(risk, book):
    book.power = D(1_000_000)
    decision = risk.check(buy(1_400, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.MAX_ORDER_NOTIONAL]
    assert decision.reason == (
        "order notional $261,940.00 is above the max order notional of $250,000.00"
    )


def test_a_market_buy_is_valued_at_the_ask(make_risk, book):
    decision = make_risk(max_order_notional=18_000).check(buy(100), book)
    assert only(decision, RiskCheck.MAX_ORDER_NOTIONAL).message.startswith(
        "order notional $18,710.00 "
    )


def test_a_market_sell_is_valued_at_the_bid(make_risk, book):
    book.positions["AAPL"] = D(100)
    decision = make_risk(max_order_notional=18_000).check(sell(100), book)
    assert only(decision, RiskCheck.MAX_ORDER_NOTIONAL).message.startswith(
        "order notional $18,705.00 "
    )


def test_a_market_order_without_a_quote_is_valued_at_the_last_trade(make_risk, book):
    decision = make_risk(max_order_notional=20_000).check(buy(400, "LAST"), book)
    assert decision.reason == (
        "order notional $20,100.00 is above the max order notional of $20,000.00"
    )


def test_a_market_order_with_no_market_price_at_all_is_rejected(risk, book):
    decision = risk.check(buy(100, "NOQUOTE"), book)
    violation = only(decision, RiskCheck.MARKET_PRICE)
    assert violation.message == "no market price for NOQUOTE yet"
    assert not violation.soft


# -- price collar (ask 187.10, bid 187.05) -------------------------------------------------


def test_a_limit_through_the_soft_collar_needs_confirmation(risk, book):
    decision = risk.check(buy(100, limit="200.00"), book)
    violation = only(decision, RiskCheck.COLLAR)
    assert violation.soft
    assert violation.message == (
        "limit 200.00 is 6.9% above the ask 187.10; the collar needs confirmation beyond 2%"
    )
    assert decision.needs_confirmation
    assert not decision.ok


def test_a_confirmed_soft_collar_breach_is_accepted(risk, book):
    decision = risk.check(buy(100, limit="200.00"), book, confirmed=True)
    assert decision.ok
    assert checks(decision) == [RiskCheck.COLLAR]


def test_a_limit_through_the_hard_collar_is_rejected_even_when_confirmed(risk, book):
    decision = risk.check(buy(100, limit="210.00"), book, confirmed=True)
    violation = only(decision, RiskCheck.COLLAR)
    assert not violation.soft
    assert (
        violation.message
        == "limit 210.00 is 12.2% above the ask 187.10, beyond the 10% hard collar"
    )
    assert not decision.ok


def test_a_sell_limit_is_measured_below_the_bid(risk, book):
    book.positions["AAPL"] = D(100)
    decision = risk.check(sell(100, limit="180.00"), book)
    assert decision.reason == (
        "limit 180.00 is 3.8% below the bid 187.05; the collar needs confirmation beyond 2%"
    )


def test_a_limit_exactly_at_the_soft_collar_needs_no_confirmation(risk, book):
    assert risk.check(buy(100, "EVEN", limit="102.00"), book).ok  # ask 100.00: exactly 2%


def test_a_limit_exactly_at_the_hard_collar_only_needs_confirmation(risk, book):
    decision = risk.check(buy(100, "EVEN", limit="110.00"), book)  # ask 100.00: exactly 10%
    assert decision.needs_confirmation
    assert decision.reason == (
        "limit 110.00 is 10.0% above the ask 100.00; the collar needs confirmation beyond 2%"
    )


@pytest.mark.parametrize(
    "request_",
    [buy(100, limit="150.00"), sell(100, limit="230.00")],
    ids=["buy-far-below", "sell-far-above"],
)
def test_a_passive_limit_far_from_the_market_is_not_a_collar_breach(risk, book, request_):
    assert risk.check(request_, book).ok


def test_a_stop_far_from_the_market_is_not_a_collar_breach(risk, book):
    assert risk.check(buy(100, type=OrderType.STOP, stop_price=D("250.00")), book).ok


def test_a_stop_limit_beyond_the_ask_is_measured_from_its_stop(risk, book):
    request = buy(100, limit="205.00", type=OrderType.STOP_LIMIT, stop_price=D("195.00"))
    decision = risk.check(request, book)
    assert decision.reason == (
        "limit 205.00 is 5.1% above the stop 195.00; the collar needs confirmation beyond 2%"
    )


def test_a_limit_with_no_quote_is_measured_from_the_last_trade(risk, book):
    decision = risk.check(buy(100, "LAST", limit="52.00"), book)
    assert decision.reason == (
        "limit 52.00 is 3.5% above the last price 50.25; the collar needs confirmation beyond 2%"
    )


def test_a_limit_with_no_market_price_at_all_needs_confirmation(risk, book):
    decision = risk.check(buy(100, "NOQUOTE", limit="10.00"), book)
    assert decision.needs_confirmation
    assert decision.reason == (
        "there is no market price for NOQUOTE yet to check limit 10.00 against the collar"
    )


# -- max position (20,000 shares, $300,000) ------------------------------------------------


def test_a_position_up_to_the_max_position_is_accepted(risk, book):
    book.positions["PENNY"] = D(15_000)
    assert risk.check(buy(5_000, "PENNY", limit="0.5013"), book).ok


def test_a_position_above_the_max_position_is_rejected(risk, book):
    book.positions["PENNY"] = D(15_000)
    decision = risk.check(buy(6_000, "PENNY", limit="0.5013"), book)
    assert checks(decision) == [RiskCheck.MAX_POSITION]
    assert decision.reason == (
        "PENNY position after the order would be 21,000 shares, above the max position of 20,000"
    )


def test_working_orders_on_the_same_side_count_toward_the_max_position(risk, book):
    book.positions["PENNY"] = D(15_000)
    book.orders.append(working("PENNY", Side.BUY, 5_000, filled=1_000))
    book.orders.append(working("PENNY", Side.SELL, 3_000))
    decision = risk.check(buy(2_000, "PENNY", limit="0.5013"), book)
    assert decision.reason == (
        "PENNY position after the order would be 21,000 shares counting 4,000 working, "
        "above the max position of 20,000"
    )


def test_a_short_position_above_the_max_position_is_rejected(risk, book):
    book.positions["PENNY"] = D(-19_000)
    decision = risk.check(sell(2_000, "PENNY", limit="0.5010"), book)
    assert decision.reason == (
        "PENNY position after the order would be -21,000 shares, above the max position of 20,000"
    )


def test_reducing_a_position_already_over_the_max_position_is_accepted(risk, book):
    book.positions["PENNY"] = D(25_000)
    assert risk.check(sell(1_000, "PENNY", limit="0.5010"), book).ok


def test_a_position_above_the_max_position_notional_is_rejected(risk, book):
    book.positions["AAPL"] = D(1_500)
    decision = risk.check(buy(200, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.MAX_POSITION]
    assert decision.reason == (
        "AAPL position after the order would be $318,070.00, "
        "above the max position notional of $300,000.00"
    )


def test_a_position_under_the_max_position_notional_is_accepted(risk, book):
    book.positions["AAPL"] = D(1_500)
    assert risk.check(buy(100, limit="187.10"), book).ok  # 1,600 x 187.10 = $299,360.00


# -- gross exposure ($500,000) -------------------------------------------------------------


def test_gross_exposure_under_the_max_is_accepted(risk, book):
    book.gross = D(480_000)
    assert risk.check(buy(100, limit="187.10"), book).ok  # $498,710.00


def test_gross_exposure_above_the_max_is_rejected(risk, book):
    book.gross = D(490_000)
    decision = risk.check(buy(100, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.GROSS_EXPOSURE]
    assert decision.reason == (
        "gross exposure after the order would be $508,710.00, "
        "above the max gross exposure of $500,000.00"
    )


def test_an_order_that_shrinks_a_position_passes_gross_exposure_even_over_the_max(risk, book):
    book.gross = D(600_000)
    book.positions["AAPL"] = D(100)
    assert risk.check(sell(100, limit="187.05"), book).ok


# -- buying power --------------------------------------------------------------------------


def test_a_risk_increasing_order_above_the_buying_power_is_rejected(risk, book):
    book.power = D(10_000)
    decision = risk.check(buy(100, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.BUYING_POWER]
    assert decision.reason == "order notional $18,710.00 is above the buying power of $10,000.00"


def test_a_risk_reducing_order_needs_no_buying_power(risk, book):
    book.power = ZERO
    book.positions["AAPL"] = D(100)
    assert risk.check(sell(100, limit="187.05"), book).ok


# -- open orders ---------------------------------------------------------------------------


def test_an_order_below_the_max_open_orders_is_accepted(make_risk, book):
    book.orders.extend(working("IBM", Side.BUY, 1) for _ in range(2))
    assert make_risk(max_open_orders=3).check(buy(100, limit="187.10"), book).ok


def test_an_order_at_the_max_open_orders_is_rejected(make_risk, book):
    book.orders.extend(working("IBM", Side.BUY, 1) for _ in range(3))
    decision = make_risk(max_open_orders=3).check(buy(100, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.MAX_OPEN_ORDERS]
    assert decision.reason == "3 orders are open already, and the max is 3"


# -- throttle ------------------------------------------------------------------------------


def test_an_order_under_the_throttle_is_accepted(risk, book):
    for qty in range(1, 20):
        risk.record_submitted(buy(qty, limit="187.10"))
    assert risk.check(buy(100, limit="187.10"), book).ok


def test_an_order_over_the_throttle_is_rejected(risk, book):
    for qty in range(1, 21):
        risk.record_submitted(buy(qty, limit="187.10"))
    decision = risk.check(buy(100, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.THROTTLE]
    assert decision.reason == (
        "20 orders were sent in the last second, and the throttle allows 20 per second"
    )


def test_the_throttle_window_slides_with_the_clock(make_risk, book, clock):
    risk = make_risk(max_orders_per_second=3)
    for offset_ms, qty in [(0, 1), (400, 2), (800, 3)]:
        clock.advance_to(T0 + offset_ms * NS_PER_MS)
        risk.record_submitted(buy(qty, limit="187.10"))
    accepted = []
    for offset_ms in [999, 1_000]:
        clock.advance_to(T0 + offset_ms * NS_PER_MS)
        accepted.append(risk.check(buy(100, limit="187.10"), book).ok)
    risk.record_submitted(buy(4, limit="187.10"))  # at 1,000 ms: 400, 800, 1,000 in the window
    for offset_ms in [1_399, 1_400]:
        clock.advance_to(T0 + offset_ms * NS_PER_MS)
        accepted.append(risk.check(buy(100, limit="187.10"), book).ok)
    assert accepted == [False, True, False, True]


# -- duplicates ----------------------------------------------------------------------------


def test_the_same_order_again_within_the_duplicate_window_is_rejected(risk, book, clock):
    risk.record_submitted(buy(100, limit="187.10"))
    clock.advance_by(120 * NS_PER_MS)
    decision = risk.check(buy(100, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.DUPLICATE]
    assert (
        decision.reason == "the same order was sent 120 ms ago, within the 500 ms duplicate window"
    )


def test_the_same_order_again_after_the_duplicate_window_is_accepted(risk, book, clock):
    risk.record_submitted(buy(100, limit="187.10"))
    clock.advance_by(500 * NS_PER_MS)
    assert risk.check(buy(100, limit="187.10"), book).ok


@pytest.mark.parametrize(
    "request_",
    [buy(101, limit="187.10"), buy(100, limit="187.09"), buy(100, limit="187.10", source="bot:x")],
    ids=["other-qty", "other-price", "other-source"],
)
def test_a_different_order_within_the_duplicate_window_is_accepted(risk, book, request_):
    risk.record_submitted(buy(100, limit="187.10"))
    assert risk.check(request_, book).ok


# -- daily loss ($5,000) -------------------------------------------------------------------


def test_a_day_loss_under_the_limit_allows_new_risk(risk, book):
    book.pnl = D("-4999.99")
    assert risk.check(buy(100, limit="187.10"), book).ok


def test_a_day_loss_at_the_limit_rejects_risk_increasing_orders(risk, book):
    book.pnl = D(-5_120)
    decision = risk.check(buy(100, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.DAILY_LOSS]
    assert decision.reason == (
        "day loss $5,120.00 has reached the daily loss limit of $5,000.00: "
        "only orders that reduce a position are allowed"
    )


def test_a_day_loss_at_the_limit_still_allows_reducing_orders(risk, book):
    book.pnl = D(-5_120)
    book.positions["AAPL"] = D(100)
    assert risk.check(sell(100, limit="187.05"), book).ok


@pytest.mark.parametrize(
    ("pnl", "breached"), [("-5000", True), ("-5120", True), ("-4999.99", False), ("250", False)]
)
def test_daily_loss_is_breached_at_or_below_minus_the_limit(risk, pnl, breached):
    assert risk.daily_loss_breached(D(pnl)) is breached


def test_daily_loss_is_never_breached_when_the_limit_is_off(make_risk):
    assert not make_risk(daily_loss_limit=None).daily_loss_breached(D(-1_000_000))


# -- kill switch ---------------------------------------------------------------------------


def test_the_kill_switch_rejects_a_risk_increasing_order(risk, book):
    risk.kill_switch.engage("daily loss $5,120.00 over $5,000.00", T0)
    decision = risk.check(buy(100, limit="187.10"), book)
    assert checks(decision) == [RiskCheck.KILL_SWITCH]
    assert decision.reason == (
        "kill switch engaged since 10:31:05 (daily loss $5,120.00 over $5,000.00): "
        "only orders that reduce a position are allowed"
    )


def test_the_kill_switch_allows_an_order_that_reduces_a_position(risk, book):
    risk.kill_switch.engage("manual", T0)
    book.positions["AAPL"] = D(-100)
    assert risk.check(buy(60, limit="187.10"), book).ok


def test_the_kill_switch_rejects_a_sell_larger_than_the_long_position(risk, book):
    risk.kill_switch.engage("manual", T0)
    book.positions["AAPL"] = D(100)
    assert checks(risk.check(sell(150, limit="187.05"), book)) == [RiskCheck.KILL_SWITCH]


def test_the_kill_switch_counts_working_reducing_orders(risk, book):
    risk.kill_switch.engage("manual", T0)
    book.positions["AAPL"] = D(100)
    book.orders.append(working("AAPL", Side.SELL, 60))
    assert checks(risk.check(sell(50, limit="187.05"), book)) == [RiskCheck.KILL_SWITCH]
    assert risk.check(sell(40, limit="187.05"), book).ok


def test_reducing_orders_under_the_kill_switch_skip_the_throttle(make_risk, book):
    risk = make_risk(max_orders_per_second=1)
    risk.record_submitted(buy(1, "IBM", limit="185.02"))
    risk.kill_switch.engage("manual", T0)
    book.positions["AAPL"] = D(100)
    assert risk.check(sell(100, limit="187.05"), book).ok


def test_the_kill_switch_stays_engaged_until_reset(risk, book, clock):
    risk.kill_switch.engage("manual", T0)
    clock.advance_by(3_600 * 1_000 * NS_PER_MS)
    assert not risk.check(buy(100, limit="187.10"), book).ok
    risk.kill_switch.reset()
    assert risk.check(buy(100, limit="187.10"), book).ok


def test_engaging_an_engaged_kill_switch_keeps_the_first_reason_and_time():
    switch = KillSwitch()
    assert switch.engage("daily loss", 100)
    assert not switch.engage("manual", 200)
    assert switch.state() == KillSwitchState(True, "daily loss", 100)


def test_resetting_the_kill_switch_clears_its_reason_and_time():
    switch = KillSwitch()
    switch.engage("manual", 100)
    switch.reset()
    assert switch.state() == KillSwitchState(False, "", None)


def test_a_restored_kill_switch_is_engaged_as_journaled():
    switch = KillSwitch()
    switch.restore(True, "daily loss", 123)
    assert (switch.engaged, switch.reason, switch.since_ns) == (True, "daily loss", 123)


# -- purity, disabled checks, live config --------------------------------------------------


def test_check_changes_nothing_and_only_record_submitted_counts(make_risk, book):
    risk = make_risk(max_orders_per_second=1)
    request = buy(100, limit="187.10")
    first, second = risk.check(request, book), risk.check(request, book)
    assert first == second
    assert first.ok
    risk.record_submitted(request)
    assert checks(risk.check(buy(7, limit="187.10"), book)) == [RiskCheck.THROTTLE]


def test_disabled_checks_never_fire(make_risk, book):
    risk = make_risk(
        max_order_qty=None,
        max_order_notional=None,
        collar_soft_pct=None,
        collar_hard_pct=None,
        max_position_qty=None,
        max_position_notional=None,
        max_gross_exposure=None,
        check_buying_power=False,
        max_open_orders=None,
        max_orders_per_second=None,
        duplicate_window_ms=None,
        daily_loss_limit=None,
    )
    book.power, book.gross, book.pnl = ZERO, D(10_000_000), D(-1_000_000)
    book.orders.extend(working("IBM", Side.BUY, 1) for _ in range(500))
    request = buy(1_000_000, limit="250.00")
    for _ in range(50):
        risk.record_submitted(request)
    assert risk.check(request, book).violations == ()
    assert risk.check(buy(100, "NOQUOTE"), book).violations == ()
    assert risk.utilization(book) == []


def test_a_new_config_applies_to_the_next_check(risk, book):
    risk.config = RiskConfig(max_order_qty=D(50))
    assert checks(risk.check(buy(100, limit="187.10"), book)) == [RiskCheck.MAX_ORDER_QTY]


# -- risk-reducing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "position", "reducing"),
    [
        (sell(100), "100", True),
        (sell(101), "100", False),
        (buy(10), "100", False),
        (buy(50), "-100", True),
        (sell(1), "0", False),
    ],
    ids=["close-long", "through-flat", "add-long", "cover-short", "open-short"],
)
def test_an_order_reduces_risk_only_on_the_opposite_side_and_no_larger(
    request_, position, reducing
):
    assert is_risk_reducing(request_, D(position)) is reducing


# -- utilization ---------------------------------------------------------------------------


def test_utilization_reports_each_enabled_limit_in_use(risk, book):
    for qty in range(1, 6):
        risk.record_submitted(buy(qty, limit="187.10"))
    book.orders.extend([working("AAPL", Side.SELL, 10), working("IBM", Side.BUY, 5)])
    book.positions.update({"AAPL": D(1_500), "IBM": D(-200)})
    book.gross, book.pnl = D(250_000), D(-1_000)
    usage = {u.name: (u.used, u.limit, u.fraction, u.check) for u in risk.utilization(book)}
    assert usage == {
        "order rate": (D(5), D(20), D("0.25"), RiskCheck.THROTTLE),
        "open orders": (D(2), D(200), D("0.01"), RiskCheck.MAX_OPEN_ORDERS),
        "gross exposure": (D(250_000), D(500_000), D("0.5"), RiskCheck.GROSS_EXPOSURE),
        "daily loss": (D(1_000), D(5_000), D("0.2"), RiskCheck.DAILY_LOSS),
        "pos qty AAPL": (D(1_500), D(20_000), D("0.075"), RiskCheck.MAX_POSITION),
        # marked at the AAPL mid, 187.075
        "pos $ AAPL": (
            D("280612.5"),
            D(300_000),
            D("0.935375"),
            RiskCheck.MAX_POSITION,
        ),
    }


def test_utilization_counts_a_day_profit_as_no_loss(risk, book):
    book.pnl = D(750)
    daily = [u for u in risk.utilization(book) if u.check is RiskCheck.DAILY_LOSS]
    assert daily[0].used == ZERO


def test_utilization_order_rate_forgets_orders_older_than_a_second(risk, book, clock):
    risk.record_submitted(buy(1, limit="187.10"))
    clock.advance_by(1_000 * NS_PER_MS)
    rate = [u for u in risk.utilization(book) if u.check is RiskCheck.THROTTLE]
    assert rate[0].used == ZERO


# -- config --------------------------------------------------------------------------------


def test_the_default_config_suits_a_100k_paper_account():
    config = RiskConfig()
    assert (config.max_order_qty, config.max_order_notional) == (D(10_000), D(250_000))
    assert (config.collar_soft_pct, config.collar_hard_pct) == (D(2), D(10))
    assert (config.daily_loss_limit, config.max_orders_per_second) == (D(5_000), 20)


def test_config_converts_ints_and_floats_to_exact_decimals():
    config = RiskConfig(max_order_notional=50_000, collar_soft_pct=2.5)
    assert config.max_order_notional == D("50000")
    assert config.collar_soft_pct == D("2.5")


def test_config_refuses_a_negative_limit_naming_the_field():
    with pytest.raises(ValueError, match=r"^risk\.max_order_qty must be positive"):
        RiskConfig(max_order_qty=D(-1))


def test_config_refuses_a_soft_collar_above_the_hard_collar():
    with pytest.raises(
        ValueError,
        match=r"^risk\.collar_soft_pct \(15%\) must not be above risk\.collar_hard_pct \(10%\)$",
    ):
        RiskConfig(collar_soft_pct=D(15))


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_open_orders", True), ("max_open_orders", "200"), ("allow_short", "yes")],
)
def test_config_refuses_a_value_of_the_wrong_type(name, value):
    with pytest.raises(ValueError, match=rf"^risk\.{name} must be"):
        RiskConfig(**{name: value})


def test_config_lists_its_settings_for_the_loader():
    assert RiskConfig.field_names() == (
        "max_order_qty",
        "max_order_notional",
        "collar_soft_pct",
        "collar_hard_pct",
        "max_position_qty",
        "max_position_notional",
        "max_gross_exposure",
        "check_buying_power",
        "max_open_orders",
        "max_orders_per_second",
        "duplicate_window_ms",
        "daily_loss_limit",
        "flatten_on_kill",
        "allow_short",
        "max_option_contracts",
        "max_portfolio_delta",
        "max_portfolio_vega",
        "var_horizon_days",
        "var_confidence_pct",
        "var_paths",
    )
    assert RiskConfig.field_doc("duplicate_window_ms").startswith("An identical order")
