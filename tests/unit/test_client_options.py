"""Options through the console seam: lazy sim chains, smiles, and portfolio greeks and VaR."""

from __future__ import annotations

import asyncio
import math
import os
from datetime import date
from pathlib import Path
from statistics import NormalDist

import pytest

from engine.cli import sim_start_ns
from engine.client import LocalClient
from engine.config import load_settings
from engine.core.clock import NS_PER_SECOND
from engine.node import Engine
from engine.options.chain import DEFAULT_RATE, NS_PER_YEAR, expiry_ns

SESSION = date(2024, 3, 15)  # a Friday: that day's options expire at its close
WARM_UP = 200
SAMPLE_DATA = Path(
    os.environ.get(
        "TICKDECK_SAMPLE_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)
SPY_MINUTE = SAMPLE_DATA / "lean" / "Data" / "equity" / "usa" / "minute" / "spy"


def sim_engine(data_dir: Path) -> Engine:
    settings = load_settings(
        env={}, cli={"seed": 4, "symbols": "AAPL,MSFT", "venue.latency_ms": 0, "speed": 0}
    )
    return Engine(
        settings,
        start_ns=sim_start_ns(SESSION.isoformat(), SESSION),
        data_dir=data_dir,
        housekeeping=False,
    )


@pytest.fixture
def client(tmp_path):
    engine = sim_engine(tmp_path)
    client = LocalClient(engine, run_feed=False)
    asyncio.run(client.start())
    step(engine, WARM_UP)
    yield client
    asyncio.run(client.stop())


def run(coro):
    return asyncio.run(coro)


def step(engine: Engine, events: int) -> None:
    for _ in range(events):
        engine.driver.step()


def hold(client: LocalClient, line: str) -> None:
    """Send a market order and step until it has filled."""
    assert run(client.execute(line)).ok
    step(client.engine, 50)
    assert any(p.qty for p in client.engine.oms.positions())


# -- chains -----------------------------------------------------------------------------------


def test_no_chain_is_built_before_a_console_asks_for_one(client):
    assert client.engine.options.symbols() == []
    run(client.option_chain("AAPL"))
    assert client.engine.options.symbols() == ["AAPL"]


def test_a_sim_symbol_gets_weeklies_and_monthlies_out_to_a_year(client):
    chain = run(client.option_chain("AAPL"))
    assert chain.reason == ""
    assert chain.expiries[:7] == (
        date(2024, 3, 15),
        date(2024, 3, 22),
        date(2024, 3, 29),
        date(2024, 4, 5),
        date(2024, 4, 12),
        date(2024, 4, 19),
        date(2024, 5, 17),
    )
    assert len(chain.expiries) == 17 and chain.expiries[-1] == date(2025, 3, 21)


def test_the_snapshot_lists_every_contract_in_chain_order(client):
    chain = run(client.option_chain("AAPL"))
    engine_chain = client.engine.options.chain("AAPL")
    assert len(chain.contracts) == len(engine_chain)
    assert [c.contract for c in chain.contracts] == list(engine_chain.contracts)
    keys = [
        (c.contract.symbol.expiry, c.contract.symbol.strike, not c.contract.symbol.right.is_call)
        for c in chain.contracts
    ]
    assert keys == sorted(keys)


def test_the_atm_call_of_a_month_out_has_a_delta_near_one_half(client):
    chain = run(client.option_chain("AAPL"))
    call, put = atm_pair(chain, date(2024, 4, 19))
    assert 0.45 < call.delta < 0.6
    assert put.delta == pytest.approx(call.delta - 1.0, abs=1e-12)  # no dividend yield


def test_atm_theoretical_values_obey_put_call_parity(client):
    chain = run(client.option_chain("AAPL"))
    expiry = date(2024, 4, 19)
    call, put = atm_pair(chain, expiry)
    strike = float(call.contract.symbol.strike)
    t = (expiry_ns(expiry) - chain.ts_ns) / NS_PER_YEAR
    assert call.theo - put.theo == pytest.approx(
        chain.spot - strike * math.exp(-DEFAULT_RATE * t), abs=1e-8
    )


def atm_pair(chain, expiry: date):
    views = chain.expiry(expiry)
    calls = views[0::2]
    i = min(
        range(len(calls)), key=lambda n: abs(float(calls[n].contract.symbol.strike) - chain.spot)
    )
    return views[2 * i], views[2 * i + 1]


def test_an_unchanged_chain_gives_the_same_snapshot_and_a_repriced_one_a_newer(client):
    first = run(client.option_chain("AAPL"))
    assert run(client.option_chain("AAPL")) is first
    step(client.engine, 300)
    later = run(client.option_chain("AAPL"))
    assert later.version > first.version and later.ts_ns > first.ts_ns


def test_a_symbol_the_engine_does_not_trade_has_no_chain(client):
    assert run(client.option_chain("ZZZZ")) is None
    assert run(client.option_smile("ZZZZ", date(2024, 4, 19))) is None


def test_a_replay_engine_says_why_it_has_no_chains(tmp_path):
    data = SPY_MINUTE / "20131007_trade.zip"
    if not data.is_file():
        pytest.skip(f"Lean sample data not found at {data} (set TICKDECK_SAMPLE_DATA)")
    settings = load_settings(env={}, cli={"mode": "replay", "data": str(data), "speed": 0})
    engine = Engine(settings, start_ns=0, data_dir=tmp_path, housekeeping=False)
    chain = run(LocalClient(engine, run_feed=False).option_chain("SPY"))
    assert chain.contracts == () and chain.expiries == ()
    assert chain.reason == "option chains come from the sim market; replay mode has none"
    engine.journal.close()


# -- smiles -----------------------------------------------------------------------------------


def test_the_svi_smile_fits_the_quoted_vols_within_a_fraction_of_a_vol_point(client):
    smile = run(client.option_smile("AAPL", date(2024, 4, 19)))
    assert len(smile.k) >= 5 and len(smile.k) == len(smile.market_vol) == len(smile.fitted_vol)
    assert smile.rmse < 0.002
    assert max(abs(m - f) for m, f in zip(smile.market_vol, smile.fitted_vol, strict=True)) < 0.01


def test_a_smile_of_an_expiry_the_chain_lacks_is_none(client):
    assert run(client.option_smile("AAPL", date(2024, 4, 18))) is None


# -- portfolio risk ---------------------------------------------------------------------------


def test_a_flat_book_has_zero_greeks_and_no_var(client):
    risk = run(client.portfolio_risk())
    assert risk.greeks.delta_dollars == 0 and risk.greeks.by_underlying == ()
    assert risk.var is None and risk.reason == "no open positions"


def test_a_stock_position_has_dollar_delta_and_no_option_greeks(client):
    hold(client, "buy 100 AAPL")
    greeks = run(client.portfolio_risk()).greeks
    (aapl,) = greeks.by_underlying
    assert aapl.delta_shares == 100
    assert aapl.delta_dollars == pytest.approx(100 * aapl.spot, rel=1e-12)
    assert (greeks.gamma_dollars, greeks.vega, greeks.theta) == (0, 0, 0)


def test_portfolio_risk_of_a_stock_position_builds_no_option_chain(client):
    hold(client, "buy 100 AAPL")
    run(client.portfolio_risk())
    assert client.engine.options.symbols() == []


def test_stock_var_matches_the_closed_form_within_monte_carlo_error(client):
    hold(client, "buy 100 AAPL")
    risk = run(client.portfolio_risk(horizon_days=1, confidence=0.99, paths=20_000))
    spot = risk.greeks.by_underlying[0].spot
    vol = client.engine.profile("AAPL").daily_vol  # one trading day's log-return sd
    z = NormalDist().inv_cdf(0.01)
    # GBM with the -vol^2/2 drift: the 1% quantile of the price is S * exp(-vol^2/2 + vol * z).
    var = -100 * spot * (math.exp(-0.5 * vol * vol + vol * z) - 1.0)
    normal_var = 100 * spot * vol * -z  # the delta-normal figure it tends to for small vol
    # The 1% quantile of 20,000 paths has a standard error near 1.1%.
    assert risk.var.var == pytest.approx(var, rel=0.04)
    assert risk.var.var == pytest.approx(normal_var, rel=0.05)
    expected_shortfall = 100 * spot * vol * NormalDist().pdf(z) / 0.01
    assert risk.var.expected_shortfall == pytest.approx(expected_shortfall, rel=0.06)


def test_the_same_seed_gives_the_same_var(client):
    hold(client, "buy 100 AAPL")
    first = run(client.portfolio_risk(seed=1)).var.var
    other = run(client.portfolio_risk(seed=2)).var.var
    assert run(client.portfolio_risk(seed=1)).var.var == first != other


def test_portfolio_risk_is_reused_until_the_engine_clock_leaves_its_bucket(client):
    hold(client, "buy 100 AAPL")
    first = run(client.portfolio_risk())
    assert run(client.portfolio_risk()) is first
    clock = client.engine.clock
    clock.advance_to(clock.now_ns() + 3 * NS_PER_SECOND)
    assert run(client.portfolio_risk()).ts_ns > first.ts_ns
