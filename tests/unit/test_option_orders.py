"""Option orders: OCC symbols in the order language, contracts of 100 in the books, option risk
checks, and fills against the sim market maker's quotes."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.cli import sim_start_ns
from engine.client import LocalClient
from engine.config import load_settings
from engine.core.models import Fill, OrderRequest, OrderStatus, OrderType, Position, Side
from engine.core.prices import contract_multiplier, is_option_symbol, on_tick_grid, passive_tick
from engine.node import Engine
from engine.orders.language import OrderSyntaxError, SubmitOrder, format_request, parse
from engine.portfolio import Portfolio
from engine.risk.options import check_option_order
from engine.risk.types import GreekExposure, RiskCheck

SESSION = date(2024, 3, 15)
EXPIRY = date(2024, 4, 19)
WARM_UP = 200
CALL = "AAPL240119C00190000"

# -- the order language -----------------------------------------------------------------------


def test_an_occ_symbol_is_an_order_symbol():
    (request,) = [parse(f"buy 2 {CALL} lmt 3.10").request]
    assert (request.symbol, request.qty, request.limit_price) == (CALL, D(2), D("3.10"))


def test_a_lower_case_occ_symbol_is_upper_cased_and_round_trips():
    command = parse("sell 1 aapl240119p00187500 lmt 2.5")
    assert isinstance(command, SubmitOrder)
    assert command.request.symbol == "AAPL240119P00187500"
    assert parse(format_request(command.request)) == command


def test_an_occ_symbol_with_an_impossible_date_names_the_date():
    with pytest.raises(OrderSyntaxError) as caught:
        parse("buy 1 AAPL240132C00190000")
    assert str(caught.value) == "'AAPL240132C00190000' has no valid expiry date (240132)"
    assert (caught.value.token, caught.value.position) == ("AAPL240132C00190000", 6)


def test_an_occ_symbol_with_a_short_strike_says_what_the_shape_is():
    with pytest.raises(OrderSyntaxError, match=r"is not an OCC option symbol \(like AAPL"):
        parse("buy 1 AAPL240119C0019000")


# -- contracts of 100 ---------------------------------------------------------------------------


def test_only_occ_symbols_carry_the_multiplier():
    assert contract_multiplier(CALL) == 100 and contract_multiplier("AAPL") == 1
    assert is_option_symbol(CALL) and not is_option_symbol("BRK.B")


def test_option_prices_tick_in_pennies_under_three_dollars_and_nickels_from_three():
    assert on_tick_grid(D("2.99"), CALL) and not on_tick_grid(D("3.01"), CALL)
    assert on_tick_grid(D("3.05"), CALL) and on_tick_grid(D("3.01"), "AAPL")


def fill(side: Side, qty: int, price: str, fee: str = "0") -> Fill:
    return Fill("x", "o", CALL, side, D(qty), D(price), 0, D(fee))


def test_buying_two_contracts_costs_two_hundred_times_the_premium():
    book = Portfolio(D(10_000))
    position = book.apply_fill(fill(Side.BUY, 2, "3.10", "0.04"))
    assert book.cash == D("9379.96")  # 10,000 - 2 x 100 x 3.10 - 0.04
    assert (position.qty, position.avg_cost) == (D(2), D("3.10"))
    book.mark(CALL, D("3.25"))
    assert book.market_value() == D(650) and book.equity() == D("10029.96")


def test_closing_contracts_realizes_the_premium_difference_times_one_hundred():
    book = Portfolio(D(10_000))
    book.apply_fill(fill(Side.BUY, 3, "3.10"))
    position = book.apply_fill(fill(Side.SELL, 2, "3.45"))
    assert position.realized_pnl == D(70)  # 2 x 100 x (3.45 - 3.10)
    assert position.qty == 1 and position.avg_cost == D("3.10")
    assert book.cash + book.cost_basis(CALL) == D(10_070)  # the ledger identity


def test_an_option_position_values_and_marks_per_contract():
    position = Position(CALL, qty=D(-2), avg_cost=D("1.50"), last_price=D("1.20"))
    assert position.market_value == D(-240)
    assert position.unrealized_pnl == D(60)  # short 2 contracts, 0.30 cheaper


# -- the option checks, with greeks given -----------------------------------------------------


class FixedGreeks:
    """Greeks as given: one contract's exposure, and the book's."""

    def __init__(self, contract: GreekExposure | None, book: GreekExposure) -> None:
        self._contract = contract
        self._book = book

    def contract(self, symbol: str) -> GreekExposure | None:
        return self._contract

    def portfolio(self) -> GreekExposure:
        return self._book


def option_violations(qty: int, side: Side, greeks, **limits):
    out = []
    request = OrderRequest(CALL, side, D(qty), OrderType.LIMIT, limit_price=D("3.10"))
    limits = {"max_contracts": None, "max_delta": None, "max_vega": None} | limits
    check_option_order(out, request, (), greeks, **limits)
    return out


def test_more_contracts_than_the_max_is_a_violation():
    (violation,) = option_violations(11, Side.BUY, None, max_contracts=10)
    assert violation.check is RiskCheck.OPTION_CONTRACTS
    assert violation.message == "11 contracts is above the max of 10 option contracts per order"


def test_delta_beyond_the_limit_is_a_violation_with_the_dollars():
    greeks = FixedGreeks(GreekExposure(9_500.0, 25.0), GreekExposure(40_000.0, 0.0))
    (violation,) = option_violations(2, Side.BUY, greeks, max_delta=D(50_000))
    assert violation.check is RiskCheck.PORTFOLIO_DELTA
    assert violation.message == (
        "portfolio delta after the order would be $59,000, beyond the max portfolio delta "
        "of $50,000"
    )


def test_an_order_that_brings_delta_back_toward_the_limit_passes():
    greeks = FixedGreeks(GreekExposure(9_500.0, 25.0), GreekExposure(80_000.0, 0.0))
    assert option_violations(2, Side.SELL, greeks, max_delta=D(50_000)) == []


def test_vega_beyond_the_limit_is_a_violation_per_vol_point():
    greeks = FixedGreeks(GreekExposure(0.0, 30.0), GreekExposure(0.0, 950.0))
    (violation,) = option_violations(2, Side.BUY, greeks, max_vega=D(1_000))
    assert violation.check is RiskCheck.PORTFOLIO_VEGA
    assert "$1,010/vol pt, beyond the max portfolio vega of $1,000/vol pt" in violation.message


def test_an_unpriced_contract_cannot_pass_the_greek_limits():
    greeks = FixedGreeks(None, GreekExposure(0.0, 0.0))
    (violation,) = option_violations(1, Side.BUY, greeks, max_delta=D(1))
    assert "has no model price yet" in violation.message


# -- trading options on the sim market ------------------------------------------------------


def sim_engine(data_dir: Path, **cli) -> Engine:
    settings = load_settings(
        env={},
        cli={"seed": 4, "symbols": "AAPL,MSFT", "venue.latency_ms": 0, "speed": 0} | cli,
    )
    return Engine(
        settings,
        start_ns=sim_start_ns(SESSION.isoformat(), SESSION),
        data_dir=data_dir,
        housekeeping=False,
    )


def step(engine: Engine, events: int) -> None:
    for _ in range(events):
        engine.driver.step()


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def client(tmp_path):
    engine = sim_engine(tmp_path)
    client = LocalClient(engine, run_feed=False)
    run(client.start())
    step(engine, WARM_UP)
    yield client
    run(client.stop())


def atm_call(client: LocalClient) -> str:
    chain = run(client.option_chain("AAPL"))
    calls = [
        c
        for c in chain.contracts
        if c.contract.symbol.expiry == EXPIRY and c.contract.symbol.right.is_call
    ]
    return min(calls, key=lambda c: abs(float(c.contract.symbol.strike) - chain.spot)).contract.occ


def test_a_previewed_contract_is_quoted_on_the_option_grid(client):
    symbol = atm_call(client)
    preview = run(client.preview(f"buy 2 {symbol}"))
    quote = client.engine.market.quote(symbol)
    assert quote is not None and D(0) < quote.bid < quote.ask
    assert on_tick_grid(quote.bid, symbol) and on_tick_grid(quote.ask, symbol)
    assert preview.notional == 2 * 100 * quote.ask
    assert preview.violations == ()


def test_a_marketable_option_order_fills_at_the_ask_and_pays_a_hundred_per_point(client):
    engine = client.engine
    symbol = atm_call(client)
    run(client.preview(f"buy 2 {symbol}"))
    ask = engine.market.quote(symbol).ask
    cash = engine.oms.account().cash
    outcome = run(client.execute(f"buy 2 {symbol} lmt {ask}"))
    assert outcome.ok, outcome.message
    step(engine, 20)
    order = engine.oms.order(outcome.order_id)
    assert order.status is OrderStatus.FILLED, order.reason
    assert order.filled_avg_price == ask
    position = engine.oms.position(symbol)
    assert (position.qty, position.avg_cost) == (D(2), ask)
    assert engine.oms.account().cash == cash - 200 * ask


def test_an_option_the_chain_does_not_list_is_an_unknown_symbol(client):
    atm_call(client)
    outcome = run(client.execute("buy 1 AAPL240419C09990000 lmt 1.00"))
    assert not outcome.ok and "AAPL240419C09990000 is not a known symbol" in outcome.message


def test_selling_an_option_not_held_is_refused_as_writing_it_naked(client):
    symbol = atm_call(client)
    outcome = run(client.execute(f"sell 1 {symbol} lmt 5.00"))
    assert not outcome.ok and f"{symbol} is not shortable" in outcome.message


def test_the_kernels_delta_stops_an_order_past_the_portfolio_delta_limit(tmp_path):
    engine = sim_engine(tmp_path, **{"risk.max_portfolio_delta": 20_000})
    client = LocalClient(engine, run_feed=False)
    run(client.start())
    try:
        step(engine, WARM_UP)
        symbol = atm_call(client)
        exposure = engine.option_market.contract(symbol)
        # An ATM call is about half a share of delta per share: ~50 shares a contract.
        assert 0.4 * 100 * 170 < exposure.delta_dollars < 0.7 * 100 * 180
        preview = run(client.preview(f"buy 3 {symbol}"))
        checks = [v.check for v in preview.violations]
        assert checks == [RiskCheck.PORTFOLIO_DELTA]
        assert run(client.preview(f"buy 1 {symbol}")).violations == ()
    finally:
        run(client.stop())


@pytest.mark.parametrize(
    ("symbol", "price", "buying", "expected"),
    [
        ("AAPL", "115.355", True, "115.35"),  # a sub-penny adjusted close: a buy rounds down
        ("AAPL", "115.355", False, "115.36"),  # and a sell up, never more aggressive
        ("AAPL", "0.99995", False, "1.00"),  # crossing $1 lands on the coarser grid
        (CALL, "3.02", True, "3.00"),  # options: nickels from $3
        (CALL, "2.999", False, "3.00"),
    ],
)
def test_a_limit_goes_on_the_grid_away_from_the_market(symbol, price, buying, expected):
    assert passive_tick(symbol, D(price), buying) == D(expected)
