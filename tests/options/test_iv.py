"""Implied volatility: round trips, agreement with vollib (Let's Be Rational), reason codes."""

from __future__ import annotations

import numpy as np
import pytest
from vollib.black_scholes_merton.implied_volatility import implied_volatility as vollib_iv

from engine.options import IVReason, bs_greeks, bs_price, implied_vol
from engine.options.backend import NUMBA_ENV_VAR


def _numba_present() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


needs_numba = pytest.mark.skipif(not _numba_present(), reason="numba is not installed")


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels():
    """Compile (or load from numba's disk cache) the fused solver before any test runs it."""
    implied_vol(10.0, 100.0, 100.0, 1.0, 0.0, 0.0, True)
    bs_greeks(100.0, 100.0, 1.0, 0.0, 0.0, 0.2, True)


def _contracts(n: int, seed: int):
    """Deep ITM to deep OTM (|ln F/K| up to ~3 sd), one hour to ten years, vols 3%..150%."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(20.0, 500.0, n)
    T = np.exp(rng.uniform(np.log(1.0 / (365.0 * 24.0)), np.log(10.0), n))
    sigma = rng.uniform(0.03, 1.5, n)
    K = S * np.exp(rng.uniform(-3.0, 3.0, n) * sigma * np.sqrt(T))
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0.0, 0.05, n)
    is_call = rng.random(n) < 0.5
    return S, K, T, r, q, sigma, is_call


def _well_conditioned(S, K, T, r, q, sigma, is_call):
    """Where the price carries the volatility: vega not tiny beside the price's rounding."""
    greeks = bs_greeks(S, K, T, r, q, sigma, is_call)
    # A one-ulp change of the price moves sigma by about eps * price / vega.
    return (greeks.vega * sigma > 1e-4 * greeks.price) & (greeks.price > 1e-8 * S)


def test_round_trip_price_iv_price_to_1e12():
    S, K, T, r, q, sigma, is_call = _contracts(20_000, seed=1)
    price = bs_price(S, K, T, r, q, sigma, is_call)
    iv = implied_vol(price, S, K, T, r, q, is_call)
    ok = _well_conditioned(S, K, T, r, q, sigma, is_call)
    assert ok.mean() > 0.8
    again = bs_price(S, K, T, r, q, iv, is_call)
    # The price formula itself rounds at a few ulps of spot and strike (its two terms cancel for
    # cheap options), so that is the absolute floor under the 1e-12 relative tolerance.
    floor = 4.0 * np.finfo(float).eps * (S + K)
    assert np.all(np.abs(again - price)[ok] <= (1e-12 * price + floor)[ok])


def test_recovers_volatility_to_1e10_where_well_conditioned():
    S, K, T, r, q, sigma, is_call = _contracts(20_000, seed=2)
    price = bs_price(S, K, T, r, q, sigma, is_call)
    iv = implied_vol(price, S, K, T, r, q, is_call)
    ok = _well_conditioned(S, K, T, r, q, sigma, is_call)
    np.testing.assert_allclose(iv[ok], sigma[ok], rtol=1e-10)


def test_deep_out_of_the_money_short_expiry_is_recovered():
    # One hour to expiry, strike 8 standard deviations out: the price is about 1e-17 of spot.
    S, T, sigma = 100.0, 1.0 / (365.0 * 24.0), 0.25
    K = S * np.exp(8.0 * sigma * np.sqrt(T))
    price = bs_price(S, K, T, 0.01, 0.0, sigma, True)
    assert 0 < price < 1e-12
    assert float(implied_vol(price, S, K, T, 0.01, 0.0, True)) == pytest.approx(sigma, rel=1e-12)


def test_agrees_with_vollib_lets_be_rational():
    S, K, T, r, q, sigma, is_call = _contracts(300, seed=3)
    price = bs_price(S, K, T, r, q, sigma, is_call)
    ok = _well_conditioned(S, K, T, r, q, sigma, is_call)
    ours = implied_vol(price, S, K, T, r, q, is_call)
    theirs = np.array(
        [
            vollib_iv(p, s, k, t, rr, qq, "c" if c else "p")
            for p, s, k, t, rr, qq, c in zip(
                price[ok], S[ok], K[ok], T[ok], r[ok], q[ok], is_call[ok], strict=True
            )
        ]
    )
    np.testing.assert_allclose(ours[ok], theirs, rtol=1e-10)


def test_price_below_intrinsic_is_nan_with_reason():
    # Discounted forward intrinsic of this call is 100 - 90 e^{-0.05} = 14.39.
    iv, reason = implied_vol(14.0, 100.0, 90.0, 1.0, 0.05, 0.0, True, return_reason=True)
    assert np.isnan(iv)
    assert reason == IVReason.BELOW_INTRINSIC


def test_price_above_maximum_is_nan_with_reason():
    # A put is worth at most K e^{-rT} = 90 e^{-0.05} = 85.61.
    iv, reason = implied_vol(86.0, 100.0, 90.0, 1.0, 0.05, 0.0, False, return_reason=True)
    assert np.isnan(iv)
    assert reason == IVReason.ABOVE_MAX


def test_bad_inputs_are_nan_with_reason():
    iv, reason = implied_vol(
        np.array([1.0, 1.0, 1.0, -1.0, np.nan]),
        np.array([0.0, 100.0, 100.0, 100.0, 100.0]),
        100.0,
        np.array([1.0, 0.0, np.inf, 1.0, 1.0]),
        0.0,
        0.0,
        True,
        return_reason=True,
    )
    assert np.isnan(iv).all()
    assert (reason == IVReason.BAD_INPUT).all()


def test_time_value_below_float64_resolution_is_no_convergence():
    iv, reason = implied_vol(1e-310, 100.0, 200.0, 0.1, 0.0, 0.0, True, return_reason=True)
    assert np.isnan(iv)
    assert reason == IVReason.NO_CONVERGENCE


def test_valid_prices_have_ok_reason_and_int8_codes():
    price = bs_price(100.0, np.array([80.0, 100.0, 120.0]), 0.5, 0.02, 0.01, 0.3, False)
    iv, reason = implied_vol(
        price, 100.0, np.array([80.0, 100.0, 120.0]), 0.5, 0.02, 0.01, False, return_reason=True
    )
    assert reason.dtype == np.int8
    assert (reason == IVReason.OK).all()
    np.testing.assert_allclose(iv, 0.3, rtol=1e-13)


def test_deep_in_the_money_put_with_dividends_is_recovered():
    S, K, T, r, q, sigma = 100.0, 180.0, 2.0, 0.03, 0.02, 0.35
    price = bs_price(S, K, T, r, q, sigma, False)
    assert float(implied_vol(price, S, K, T, r, q, False)) == pytest.approx(sigma, rel=1e-11)


def test_threaded_blocks_match_small_single_block_calls():
    S, K, T, r, q, sigma, is_call = _contracts(50_000, seed=4)
    price = bs_price(S, K, T, r, q, sigma, is_call)
    whole = implied_vol(price, S, K, T, r, q, is_call)
    args = (price, S, K, T, r, q, is_call)
    pieces = [implied_vol(*(a[i : i + 1_000] for a in args)) for i in range(0, 50_000, 1_000)]
    np.testing.assert_array_equal(whole, np.concatenate(pieces))


def test_numpy_fallback_recovers_volatility_to_1e10_where_well_conditioned(monkeypatch):
    S, K, T, r, q, sigma, is_call = _contracts(20_000, seed=2)
    price = bs_price(S, K, T, r, q, sigma, is_call)
    ok = _well_conditioned(S, K, T, r, q, sigma, is_call)
    monkeypatch.setenv(NUMBA_ENV_VAR, "off")
    iv = implied_vol(price, S, K, T, r, q, is_call)
    np.testing.assert_allclose(iv[ok], sigma[ok], rtol=1e-10)


def _with_invalid_prices(seed: int):
    """Contracts with some prices pushed under intrinsic, over the maximum, or to zero."""
    S, K, T, r, q, sigma, is_call = _contracts(20_000, seed)
    price = bs_price(S, K, T, r, q, sigma, is_call)
    price[::97] = -1.0
    price[::89] += S[::89] + K[::89]
    price[::101] = 0.0
    return price, S, K, T, r, q, sigma, is_call


@needs_numba
def test_fused_and_numpy_solvers_give_the_same_reason_codes(monkeypatch):
    price, S, K, T, r, q, _sigma, is_call = _with_invalid_prices(seed=5)
    args = (price, S, K, T, r, q, is_call)
    _, fused = implied_vol(*args, return_reason=True)
    monkeypatch.setenv(NUMBA_ENV_VAR, "off")
    _, blocks = implied_vol(*args, return_reason=True)
    assert set(np.unique(fused)) >= {IVReason.OK, IVReason.BELOW_INTRINSIC, IVReason.ABOVE_MAX}
    np.testing.assert_array_equal(fused, blocks)


@needs_numba
def test_fused_and_numpy_solvers_agree_to_1e10_where_well_conditioned(monkeypatch):
    price, S, K, T, r, q, sigma, is_call = _with_invalid_prices(seed=6)
    args = (price, S, K, T, r, q, is_call)
    fused, reason = implied_vol(*args, return_reason=True)
    monkeypatch.setenv(NUMBA_ENV_VAR, "off")
    blocks = implied_vol(*args)
    solved = _well_conditioned(S, K, T, r, q, sigma, is_call) & (reason == IVReason.OK)
    assert solved.mean() > 0.75
    np.testing.assert_allclose(fused[solved], blocks[solved], rtol=1e-10)


@needs_numba
def test_fused_solver_broadcasts_a_strike_row_against_an_expiry_column():
    strikes = np.array([80.0, 100.0, 120.0])
    expiries = np.array([[0.05], [0.5], [2.0]])
    price = bs_price(100.0, strikes, expiries, 0.02, 0.01, 0.3, True)
    iv = implied_vol(price, 100.0, strikes, expiries, 0.02, 0.01, True)
    assert iv.shape == (3, 3)
    np.testing.assert_allclose(iv, 0.3, rtol=1e-12)
