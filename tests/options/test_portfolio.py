"""Portfolio greeks and Monte Carlo VaR / expected shortfall."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from scipy.stats import norm

from engine.core.errors import InputError
from engine.options.chain import NS_PER_YEAR, OptionChain, OptionContract, expiry_ns
from engine.options.occ import OptionSymbol, Right
from engine.options.portfolio import (
    ChainPricer,
    OptionTerms,
    StaticPricer,
    aggregate_greeks,
    monte_carlo_var,
)

CALL = "ACME220422C00100000"
PUT = "ACME220422P00100000"
# S = K = 100, T = 1, r = 5%, q = 0, vol = 20%: call 10.450583572185565, delta 0.6368306511756191,
# gamma 0.018762017345846895, vega 37.52403469169379 per 1.00, theta -6.414027546438197 per year;
# put 5.573526022256971, delta -0.3631693488243809 (same gamma and vega).
TERMS = {
    CALL: OptionTerms("ACME", 100.0, 1.0, 0.05, 0.0, 0.2, True),
    PUT: OptionTerms("ACME", 100.0, 1.0, 0.05, 0.0, 0.2, False),
}
PRICER = StaticPricer(
    spots={"ACME": 100.0, "ZZZ": 50.0}, vols={"ACME": 0.2, "ZZZ": 0.4}, options=TERMS
)


def test_stock_delta_is_its_shares() -> None:
    greeks = aggregate_greeks([("ACME", Decimal(300))], PRICER)
    (row,) = greeks.by_underlying
    assert (row.delta_shares, row.delta_dollars, row.gamma_shares, row.vega) == (300, 30_000, 0, 0)
    assert greeks.value == 30_000


def test_option_greeks_scale_by_contracts_and_multiplier() -> None:
    (row,) = aggregate_greeks([(CALL, Decimal(2))], PRICER).by_underlying
    assert row.delta_shares == pytest.approx(200 * 0.6368306511756191, rel=1e-12)
    assert row.gamma_shares == pytest.approx(200 * 0.018762017345846895, rel=1e-12)
    assert row.vega == pytest.approx(200 * 0.3752403469169379, rel=1e-12)  # $ per vol point
    assert row.theta == pytest.approx(200 * -6.414027546438197 / 365, rel=1e-12)  # $ per day
    assert row.value == pytest.approx(200 * 10.450583572185565, rel=1e-12)


def test_straddle_plus_short_stock_nets_per_underlying() -> None:
    positions = [
        (CALL, Decimal(1)),
        (PUT, Decimal(1)),
        ("ACME", Decimal(-27)),
        ("ZZZ", Decimal(10)),
    ]
    greeks = aggregate_greeks(positions, PRICER)
    acme, zzz = greeks.by_underlying
    # 100 * (0.63683 - 0.36317) - 27 = 0.36613 shares
    assert acme.delta_shares == pytest.approx(100 * (0.6368306511756191 - 0.3631693488243809) - 27)
    assert acme.gamma_dollars == pytest.approx(200 * 0.018762017345846895 * 100.0, rel=1e-12)
    assert (zzz.underlying, zzz.delta_dollars) == ("ZZZ", 500.0)
    assert greeks.delta_dollars == pytest.approx(acme.delta_dollars + 500.0)


def test_unknown_symbols_are_input_errors() -> None:
    with pytest.raises(InputError, match="the pricer has no price for NOPE"):
        aggregate_greeks([("NOPE", Decimal(1))], PRICER)


def _closed_form_var(value: float, vol: float, h: float, confidence: float) -> float:
    """Driftless GBM: the loss at the (1 - c) quantile is V (1 - exp(-vol^2 h / 2 + vol sqrt(h) z))."""
    z = norm.ppf(1 - confidence)
    return value * (1 - math.exp(-0.5 * vol * vol * h + vol * math.sqrt(h) * z))


def test_stock_var_matches_the_closed_form_within_monte_carlo_error() -> None:
    paths, confidence, days = 200_000, 0.99, 10
    result = monte_carlo_var(
        [("ACME", Decimal(1000))],
        PRICER,
        horizon_days=days,
        confidence=confidence,
        paths=paths,
        seed=1,
    )
    h = days / 252
    expected = _closed_form_var(100_000.0, 0.2, h, confidence)
    # Quantile standard error: sqrt(p (1 - p) / n) / f(q), f the P&L density at the quantile.
    p = 1 - confidence
    sd = 100_000.0 * 0.2 * math.sqrt(h)
    std_error = math.sqrt(p * (1 - p) / paths) / (norm.pdf(norm.ppf(p)) / sd)
    assert abs(result.var - expected) < 4 * std_error
    # The normal (delta) VaR V vol sqrt(h) z differs from it only by the lognormal skew.
    assert result.var == pytest.approx(sd * norm.ppf(confidence), rel=0.05)


def test_expected_shortfall_exceeds_var_and_matches_the_normal_tail() -> None:
    result = monte_carlo_var(
        [("ACME", Decimal(1000))], PRICER, horizon_days=1, confidence=0.975, paths=200_000, seed=2
    )
    sd = 100_000.0 * 0.2 * math.sqrt(1 / 252)
    assert result.expected_shortfall > result.var
    assert result.expected_shortfall == pytest.approx(
        sd * norm.pdf(norm.ppf(0.975)) / 0.025, rel=0.03
    )


def test_var_is_deterministic_for_a_seed() -> None:
    positions = [(CALL, Decimal(-5)), ("ACME", Decimal(300))]
    first = monte_carlo_var(positions, PRICER, paths=20_000, seed=9)
    second = monte_carlo_var(positions, PRICER, paths=20_000, seed=9)
    assert first == second


def test_short_option_var_is_worse_than_its_delta_hedge_alone_suggests() -> None:
    # A delta-hedged short straddle loses on big moves either way: positive VaR, mean P&L ~ theta.
    positions = [
        (CALL, Decimal(-10)),
        (PUT, Decimal(-10)),
        ("ACME", Decimal(round(1000 * 0.2736613))),
    ]
    result = monte_carlo_var(positions, PRICER, horizon_days=5, paths=50_000, seed=3)
    assert result.var > 0
    assert result.expected_shortfall > result.var


def test_perfect_correlation_adds_the_stock_vars() -> None:
    positions = [("ACME", Decimal(1000)), ("ZZZ", Decimal(2000))]
    kwargs = {"horizon_days": 1, "confidence": 0.99, "paths": 100_000, "seed": 4}
    together = monte_carlo_var(
        positions, PRICER, correlation=[[1.0, 0.9999999], [0.9999999, 1.0]], **kwargs
    )
    acme = _closed_form_var(100_000.0, 0.2, 1 / 252, 0.99)
    zzz = _closed_form_var(100_000.0, 0.4, 1 / 252, 0.99)
    assert together.var == pytest.approx(acme + zzz, rel=0.03)
    independent = monte_carlo_var(positions, PRICER, **kwargs)
    assert independent.var < 0.85 * together.var


def test_refuses_a_bad_correlation_matrix() -> None:
    with pytest.raises(InputError, match="positive definite"):
        monte_carlo_var(
            [("ACME", Decimal(1)), ("ZZZ", Decimal(1))],
            PRICER,
            correlation=[[1.0, 2.0], [2.0, 1.0]],
            paths=1000,
        )


def test_refuses_a_confidence_outside_the_unit_interval() -> None:
    with pytest.raises(InputError, match="confidence"):
        monte_carlo_var([("ACME", Decimal(1))], PRICER, confidence=1.5)


def test_chain_pricer_reads_terms_from_a_repriced_chain() -> None:
    expiry = date(2022, 4, 22)
    contracts = [
        OptionContract(OptionSymbol("ACME", expiry, right, Decimal(100)), "ACME")
        for right in (Right.CALL, Right.PUT)
    ]
    chain = OptionChain("ACME", contracts, r=0.05, model_vol=[0.2, 0.2], xp=np)
    chain.reprice(100.0, expiry_ns(expiry) - NS_PER_YEAR)
    pricer = ChainPricer({"ACME": chain})
    assert pricer.option_terms(PUT) == OptionTerms("ACME", 100.0, 1.0, 0.05, 0.0, 0.2, False)
    assert pricer.underlying_vol("ACME") == 0.2
    (row,) = aggregate_greeks([(CALL, Decimal(1))], pricer).by_underlying
    assert row.delta_shares == pytest.approx(63.68306511756191, rel=1e-12)


@pytest.mark.gpu
def test_stock_var_on_the_gpu_matches_the_closed_form() -> None:
    cp = pytest.importorskip("cupy", reason="cupy is not installed (pip install .[gpu])")
    try:
        devices = cp.cuda.runtime.getDeviceCount()
    except Exception:
        devices = 0
    if devices < 1:
        pytest.skip("cupy is installed but sees no CUDA device")
    result = monte_carlo_var(
        [("ACME", Decimal(1000)), (CALL, Decimal(1))], PRICER, paths=200_000, seed=1, xp=cp
    )
    cpu = monte_carlo_var(
        [("ACME", Decimal(1000)), (CALL, Decimal(1))], PRICER, paths=200_000, seed=1, xp=np
    )
    assert result.backend == "cupy"
    assert result.var == pytest.approx(cpu.var, rel=0.03)  # different streams: MC error only
