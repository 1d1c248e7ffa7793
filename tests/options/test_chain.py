"""Option chains: layout, the synthetic surface and quotes, repricing, and the coalescing service."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from engine.core.bus import MessageBus, Topic
from engine.core.clock import NEW_YORK, NS_PER_MS, SimClock, datetime_to_ns
from engine.core.conflate import MarketView
from engine.core.errors import InputError
from engine.core.models import Quote
from engine.data.calibration import SymbolProfile
from engine.options.chain import (
    NS_PER_YEAR,
    OptionChain,
    OptionChainService,
    OptionContract,
    SyntheticSurface,
    expiry_ns,
    option_order_price,
    strike_increment,
    synthetic_chain,
    synthetic_expiries,
)
from engine.options.occ import OptionSymbol, Right

WEDNESDAY = datetime(2021, 4, 21, 10, 0, tzinfo=NEW_YORK)
NOW_NS = datetime_to_ns(WEDNESDAY)
# daily vol 0.02 -> realized 0.02 * sqrt(252) = 0.31749; ATM short 0.33749, long 0.35749
PROFILE = SymbolProfile(
    symbol="ACME",
    start_price=Decimal("100.00"),
    prev_close=Decimal("99.50"),
    daily_vol=0.02,
    avg_daily_volume=5_000_000,
    spread_bps=2.0,
    typical_quote_size=300,
)


@pytest.fixture(scope="module")
def chain() -> OptionChain:
    return synthetic_chain(PROFILE, NOW_NS, xp=np)


def _one_year_chain(strike: str = "100") -> tuple[OptionChain, int]:
    expiry = date(2022, 4, 22)
    contracts = [
        OptionContract(OptionSymbol("ACME", expiry, right, Decimal(strike)), "ACME")
        for right in (Right.PUT, Right.CALL)
    ]
    chain = OptionChain("ACME", contracts, r=0.05, q=0.0, model_vol=[0.2, 0.2], xp=np)
    return chain, expiry_ns(expiry) - NS_PER_YEAR


def test_expiries_are_six_weekly_fridays_then_monthlies_to_a_year() -> None:
    expiries = synthetic_expiries(date(2021, 4, 21))
    assert expiries[:6] == [date(2021, 4, 23) + timedelta(weeks=w) for w in range(6)]
    assert date(2021, 6, 18) in expiries and date(2022, 4, 14) not in expiries
    assert expiries[-1] == date(2022, 4, 15)  # third Friday of April 2022
    assert all(d.weekday() == 4 for d in expiries)


def test_strike_increments_follow_the_price_level() -> None:
    assert [strike_increment(s) for s in (12.0, 80.0, 133.5, 400.0, 3362.0)] == [
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
    ]


def test_synthetic_chain_layout_is_expiry_then_strike_then_call_before_put(
    chain: OptionChain,
) -> None:
    keys = [
        (c.symbol.expiry, c.symbol.strike, c.symbol.right is Right.PUT) for c in chain.contracts
    ]
    assert keys == sorted(keys)
    first = chain.contracts[0].symbol
    assert (first.right, chain.contracts[1].symbol.right) == (Right.CALL, Right.PUT)
    assert chain.index(chain.contracts[7].occ) == 7


def test_synthetic_strikes_sit_on_the_increment_around_spot(chain: OptionChain) -> None:
    strikes = [c.symbol.strike for c in chain.contracts]
    assert all(k % Decimal("2.5") == 0 for k in strikes)
    first_week = chain.expiry_slice(chain.expiries[0])
    week = [float(k) for k in strikes[first_week]]
    assert min(week) <= 90.0 and max(week) >= 110.0


def test_atm_vol_is_realized_vol_plus_premium_rising_with_term() -> None:
    surface = SyntheticSurface.from_profile(PROFILE)
    realized = 0.02 * math.sqrt(252)
    assert surface.atm_vol(0.0) == pytest.approx(realized + 0.02, abs=1e-6)
    assert surface.atm_vol(1 / 12) < surface.atm_vol(0.5) < surface.atm_vol(1.0)
    assert surface.atm_vol(1.0) < realized + 0.04


def test_smile_has_put_skew(chain: OptionChain) -> None:
    surface = chain.surface
    month = 30 / 365
    vols = surface.vols(np, np.log(np.array([0.9, 1.0, 1.05])), month)
    assert vols[0] > vols[1] + 0.02  # the 90% put is more than 2 vol points over ATM
    assert vols[2] < vols[1]
    smile = surface.smile(month)
    assert float(smile.implied_vol(0.0, month)) == pytest.approx(surface.atm_vol(month), rel=1e-12)


def test_skew_flattens_with_term(chain: OptionChain) -> None:
    surface = chain.surface
    k = np.log(np.array([0.9, 1.0]))
    short, long = surface.vols(np, k, 30 / 365), surface.vols(np, k, 1.0)
    assert short[0] - short[1] > long[0] - long[1] > 0


def test_quotes_bracket_theo_on_the_tick_grid(chain: OptionChain) -> None:
    bid, ask, theo = chain.bid, chain.ask, chain.theo
    assert np.all(bid <= theo + 1e-12) and np.all(theo <= ask + 1e-12)
    tick = np.where(ask < 3.0, 0.01, 0.05)
    assert np.allclose(np.round(ask / tick) * tick, ask, atol=1e-9)
    quoted = bid > 0
    bid_tick = np.where(bid < 3.0, 0.01, 0.05)
    assert np.allclose(np.round(bid / bid_tick) * bid_tick, bid, atol=1e-9)
    assert quoted.mean() > 0.5


def test_spread_in_vol_points_widens_away_from_the_money(chain: OptionChain) -> None:
    span = chain.expiry_slice(chain.expiries[8])
    strikes, vega = chain.strike[span], chain.vega[span]
    width = (chain.ask[span] - chain.bid[span]) / vega
    atm = np.argmin(np.abs(strikes - 100.0))
    wing = np.argmin(np.abs(strikes - 130.0))
    assert width[wing] > 1.5 * width[atm]


def test_mid_iv_recovers_the_surface_near_the_money(chain: OptionChain) -> None:
    near = (np.abs(np.log(chain.strike / 100.0)) < 0.1) & (chain.t > 20 / 365)
    assert near.sum() > 50
    assert np.max(np.abs(chain.iv[near] - chain.model_vol[near])) < 0.01


def test_smile_fit_of_the_quotes_recovers_the_surface(chain: OptionChain) -> None:
    expiry = chain.expiries[9]
    fit = chain.fit_smile(expiry)
    t = fit.t
    assert fit.rmse < 0.005  # quotes on the tick grid leave a little noise in the mid vols
    k = np.linspace(-0.1, 0.1, 5)
    assert np.allclose(fit.params.implied_vol(k, t), chain.surface.vols(np, k, t), atol=0.003)


def test_reprice_matches_hand_computed_black_scholes() -> None:
    chain, now_ns = _one_year_chain()
    chain.reprice(100.0, now_ns)
    # S = K = 100, T = 1, r = 5%, q = 0, vol = 20%: the textbook call 10.4506 and put 5.5735.
    put, call = chain.index("ACME220422P00100000"), chain.index("ACME220422C00100000")
    assert chain.t[call] == pytest.approx(1.0, abs=1e-15)
    assert chain.theo[call] == pytest.approx(10.450583572185565, abs=1e-9)
    assert chain.theo[put] == pytest.approx(5.573526022256971, abs=1e-9)
    assert chain.delta[call] == pytest.approx(0.6368306511756191, abs=1e-9)


def test_time_to_expiry_comes_from_the_given_clock_time() -> None:
    chain, now_ns = _one_year_chain()
    chain.reprice(100.0, now_ns + NS_PER_YEAR // 2)
    assert float(chain.t[0]) == pytest.approx(0.5, abs=1e-12)


def test_edge_is_theo_minus_mid_and_iv_inverts_the_mid() -> None:
    chain, now_ns = _one_year_chain()
    chain.set_quotes([10.40, 5.50], [10.60, 5.60])  # chain order: the call, then the put
    chain.reprice(100.0, now_ns)
    assert chain.edge[0] == pytest.approx(10.450583572185565 - 10.50, abs=1e-9)
    assert chain.edge[1] == pytest.approx(5.573526022256971 - 5.55, abs=1e-9)
    chain.set_quotes(chain.theo, chain.theo)
    chain.reprice(100.0, now_ns)
    assert np.allclose(chain.iv, 0.2, atol=1e-10)


def test_constructor_columns_follow_their_contracts_into_chain_order() -> None:
    chain, _ = _one_year_chain()
    ordered = OptionChain("ACME", list(reversed(chain.contracts)), model_vol=[0.3, 0.1], xp=np)
    assert ordered.contracts == chain.contracts
    assert list(ordered.model_vol) == [0.1, 0.3]


def test_view_carries_host_floats_for_one_contract() -> None:
    chain, now_ns = _one_year_chain()
    chain.reprice(100.0, now_ns)
    view = chain.views(date(2022, 4, 22))[0]
    assert view.contract.occ == "ACME220422C00100000"
    assert view.theo == pytest.approx(10.450583572185565, abs=1e-9)
    assert math.isnan(view.bid) and math.isnan(view.iv)


def test_unknown_contract_and_expiry_are_input_errors(chain: OptionChain) -> None:
    with pytest.raises(InputError, match="no contract"):
        chain.index("ACME300118C00100000")
    with pytest.raises(InputError, match="no expiry"):
        chain.expiry_slice(date(2030, 1, 18))


def test_option_order_price_rounds_onto_the_option_tick_grid() -> None:
    assert option_order_price(1.234) == Decimal("1.23")
    assert option_order_price(3.123) == Decimal("3.10")
    assert option_order_price(3.13) == Decimal("3.15")
    with pytest.raises(InputError):
        option_order_price(math.nan)


# -- the service ---------------------------------------------------------------------------


def _quote(symbol: str, ts_ns: int, bid: str, ask: str) -> Quote:
    return Quote(symbol, ts_ns, Decimal(bid), 100, Decimal(ask), 100)


@pytest.fixture
def service() -> tuple[OptionChainService, MessageBus, SimClock]:
    bus = MessageBus()
    clock = SimClock(NOW_NS)
    market = MarketView(bus)
    svc = OptionChainService(bus, clock, market, interval_ns=100 * NS_PER_MS)
    svc.add_synthetic(PROFILE, xp=np)
    return svc, bus, clock


def test_ticks_only_mark_dirty_until_the_batch_timer(service) -> None:
    svc, bus, clock = service
    for i in range(50):
        bus.publish(Topic.QUOTE, _quote("ACME", NOW_NS + i, "101.00", f"{101.02 + i / 100:.2f}"))
    assert svc.reprices == 0
    clock.advance_by(100 * NS_PER_MS)
    assert svc.reprices == 1
    assert svc.chain("ACME").spot == pytest.approx((101.00 + 101.51) / 2)


def test_a_new_batch_after_a_flush_reprices_again(service) -> None:
    svc, bus, clock = service
    bus.publish(Topic.QUOTE, _quote("ACME", NOW_NS, "100.00", "100.02"))
    clock.advance_by(100 * NS_PER_MS)
    bus.publish(Topic.QUOTE, _quote("ACME", clock.now_ns(), "99.00", "99.02"))
    clock.advance_by(100 * NS_PER_MS)
    assert svc.reprices == 2
    assert svc.chain("ACME").ts_ns == NOW_NS + 200 * NS_PER_MS


def test_other_symbols_do_not_trigger_a_reprice(service) -> None:
    svc, bus, clock = service
    bus.publish(Topic.QUOTE, _quote("OTHER", NOW_NS, "10.00", "10.01"))
    clock.advance_by(NS_PER_MS * 1000)
    assert svc.reprices == 0


def test_reprice_on_demand_uses_the_latest_price(service) -> None:
    svc, bus, _ = service
    bus.publish(Topic.QUOTE, _quote("ACME", NOW_NS, "104.00", "104.02"))
    chain = svc.reprice("ACME")
    assert chain.spot == pytest.approx(104.01)
    assert svc.version >= 2


def test_reprice_of_an_unknown_symbol_is_an_input_error(service) -> None:
    svc, _, _ = service
    with pytest.raises(InputError, match="no option chain for NOPE"):
        svc.reprice("NOPE")


def test_close_stops_listening(service) -> None:
    svc, bus, clock = service
    svc.close()
    bus.publish(Topic.QUOTE, _quote("ACME", NOW_NS, "100.00", "100.02"))
    clock.advance_by(NS_PER_MS * 1000)
    assert svc.reprices == 0


def _cupy_or_skip():
    cp = pytest.importorskip("cupy", reason="cupy is not installed (pip install .[gpu])")
    try:
        devices = cp.cuda.runtime.getDeviceCount()
    except Exception:
        devices = 0
    if devices < 1:
        pytest.skip("cupy is installed but sees no CUDA device")
    return cp


@pytest.mark.gpu
def test_a_chain_repriced_on_the_gpu_matches_the_cpu() -> None:
    cp = _cupy_or_skip()
    cpu = synthetic_chain(PROFILE, NOW_NS, xp=np)
    gpu = synthetic_chain(PROFILE, NOW_NS, xp=cp)
    for name in ("model_vol", "theo", "delta", "gamma", "theta", "vega", "rho"):
        assert np.allclose(
            cp.asnumpy(getattr(gpu, name)), getattr(cpu, name), rtol=1e-10, atol=1e-10
        )
    # A quote exactly on a tick boundary may round differently in the last bit: allow a few.
    assert np.mean(cp.asnumpy(gpu.ask) != cpu.ask) < 0.001
    assert gpu.view(10).contract == cpu.view(10).contract
