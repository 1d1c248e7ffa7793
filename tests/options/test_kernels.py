"""Black-Scholes-Merton prices and greeks against QuantLib, and backend selection.

QuantLib prices each grid point with AnalyticEuropeanEngine on a BlackScholesMertonProcess with
flat Actual/365 Fixed curves and an integer number of days to expiry, so our T = days / 365
matches its year fraction exactly. Agreement is |ours - QuantLib| <= 1e-10 |QuantLib| + atol,
with atol = 1e-12 (in each quantity's own units) for values that are essentially zero, where a
relative error is meaningless. QuantLib's theta() is per year and its vega and rho per 1.00.
"""

from __future__ import annotations

import numpy as np
import pytest
import QuantLib as ql

from engine.core.errors import ConfigError
from engine.options import Greeks, backend, bs_greeks, bs_price
from engine.options.backend import NUMBA_ENV_VAR, GpuUnavailable, cpu_kernels

RTOL = 1e-10
ATOL = 1e-12
FIELDS = ("price", "delta", "gamma", "theta", "vega", "rho")


def _grid(n: int = 300, seed: int = 7):
    """Random contracts: ITM and OTM, calls and puts, 1 day to 10 years, some negative rates."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(20.0, 500.0, n)
    K = S * np.exp(rng.uniform(-0.7, 0.7, n))
    days = rng.choice([1, 2, 5, 14, 30, 91, 182, 365, 730, 1825, 3650], n)
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0.0, 0.05, n)
    sigma = rng.uniform(0.05, 1.2, n)
    is_call = rng.random(n) < 0.5
    return S, K, days, r, q, sigma, is_call


def _quantlib(S, K, days, r, q, sigma, is_call) -> list[float]:
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(S)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), sigma, dc)),
    )
    kind = ql.Option.Call if is_call else ql.Option.Put
    option = ql.EuropeanOption(
        ql.PlainVanillaPayoff(kind, K), ql.EuropeanExercise(today + int(days))
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return [
        option.NPV(),
        option.delta(),
        option.gamma(),
        option.theta(),
        option.vega(),
        option.rho(),
    ]


def _numba_present() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


needs_numba = pytest.mark.skipif(not _numba_present(), reason="numba is not installed")


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels():
    """Compile (or load from numba's disk cache) the fused kernels before any test runs them."""
    bs_greeks(100.0, 100.0, 1.0, 0.0, 0.0, 0.2, True)
    bs_price(100.0, 100.0, 1.0, 0.0, 0.0, 0.2, True)


@pytest.fixture
def numpy_blocks(monkeypatch):
    """Run the kernels on the NumPy fallback, as on a machine without numba."""
    monkeypatch.setenv(NUMBA_ENV_VAR, "off")


@pytest.fixture(scope="module")
def grid_and_reference():
    S, K, days, r, q, sigma, is_call = _grid()
    reference = np.array(
        [_quantlib(*row) for row in zip(S, K, days, r, q, sigma, is_call, strict=True)]
    )
    return (S, K, days / 365.0, r, q, sigma, is_call), reference


@pytest.mark.parametrize("index,field", list(enumerate(FIELDS)))
def test_greek_matches_quantlib_on_random_grid(grid_and_reference, index, field):
    args, reference = grid_and_reference
    ours = getattr(bs_greeks(*args), field)
    np.testing.assert_allclose(ours, reference[:, index], rtol=RTOL, atol=ATOL)


def test_price_matches_quantlib_on_random_grid(grid_and_reference):
    args, reference = grid_and_reference
    np.testing.assert_allclose(bs_price(*args), reference[:, 0], rtol=RTOL, atol=ATOL)


def test_price_equals_price_from_greeks():
    S, K, days, r, q, sigma, is_call = _grid(2_000, seed=3)
    args = (S, K, days / 365.0, r, q, sigma, is_call)
    np.testing.assert_array_equal(bs_price(*args), bs_greeks(*args).price)


def test_put_call_parity_holds_to_rounding():
    S, K, days, r, q, sigma, _ = _grid(1_000, seed=11)
    T = days / 365.0
    call = bs_price(S, K, T, r, q, sigma, True)
    put = bs_price(S, K, T, r, q, sigma, False)
    parity = S * np.exp(-q * T) - K * np.exp(-r * T)
    assert np.all(np.abs((call - put) - parity) <= 1e-12 * np.maximum(S, K))


def test_known_value_of_at_the_money_call():
    # Hull's textbook example: S=42, K=40, T=0.5, r=10%, sigma=20%, no dividend -> 4.76.
    assert float(bs_price(42.0, 40.0, 0.5, 0.10, 0.0, 0.20, True)) == pytest.approx(
        4.759422392871532, rel=1e-13
    )


def test_inputs_broadcast_to_a_common_shape():
    strikes = np.array([[90.0], [100.0], [110.0]])
    expiries = np.array([0.25, 0.5, 1.0, 2.0])
    greeks = bs_greeks(100.0, strikes, expiries, 0.02, 0.0, 0.3, True)
    assert isinstance(greeks, Greeks)
    assert greeks.vega.shape == (3, 4)
    assert greeks.price[1, 2] == pytest.approx(
        float(bs_price(100.0, 100.0, 1.0, 0.02, 0.0, 0.3, True))
    )


def test_out_of_domain_inputs_give_nan():
    prices = bs_price(
        np.array([-1.0, 100.0, 100.0, 100.0, np.nan]),
        np.array([100.0, 0.0, 100.0, 100.0, 100.0]),
        np.array([1.0, 1.0, -0.5, 1.0, 1.0]),
        0.01,
        0.0,
        np.array([0.2, 0.2, 0.2, -0.1, 0.2]),
        True,
    )
    assert np.isnan(prices).all()


def test_zero_volatility_prices_discounted_forward_intrinsic():
    price = bs_price(100.0, 90.0, 1.0, 0.05, 0.02, 0.0, True)
    assert float(price) == pytest.approx(100.0 * np.exp(-0.02) - 90.0 * np.exp(-0.05), rel=1e-15)


def test_backend_off_selects_numpy(monkeypatch):
    monkeypatch.setenv("TICKDECK_GPU", "off")
    chosen = backend()
    assert chosen.xp is np
    assert not chosen.is_gpu
    assert "off" in chosen.reason


def test_backend_rejects_unknown_setting(monkeypatch):
    monkeypatch.setenv("TICKDECK_GPU", "maybe")
    with pytest.raises(ConfigError, match="TICKDECK_GPU"):
        backend()


def _gpu_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.skipif(_gpu_present(), reason="this machine has a CUDA GPU, so 'on' succeeds")
def test_backend_on_without_gpu_raises_one_clear_error(monkeypatch):
    monkeypatch.setenv("TICKDECK_GPU", "on")
    with pytest.raises(GpuUnavailable, match="TICKDECK_GPU=on"):
        backend()


@pytest.mark.skipif(_gpu_present(), reason="this machine has a CUDA GPU")
def test_backend_auto_without_gpu_falls_back_to_numpy(monkeypatch):
    monkeypatch.delenv("TICKDECK_GPU", raising=False)
    chosen = backend()
    assert chosen.name == "numpy"
    assert "because" in chosen.reason


def test_scalar_inputs_give_a_zero_dimensional_array():
    price = bs_price(100.0, 100.0, 1.0, 0.0, 0.0, 0.2, True)
    assert isinstance(price, np.ndarray)
    assert price.shape == ()


def test_threaded_blocks_match_small_single_block_calls():
    # 50,000 contracts run on the thread pool in blocks; 1,000 at a time run inline.
    S, K, days, r, q, sigma, is_call = _grid(50_000, seed=13)
    args = (S, K, days / 365.0, r, q, sigma, is_call)
    whole = bs_greeks(*args)
    pieces = [bs_greeks(*(a[i : i + 1_000] for a in args)) for i in range(0, 50_000, 1_000)]
    for field in FIELDS:
        joined = np.concatenate([getattr(p, field) for p in pieces])
        np.testing.assert_array_equal(getattr(whole, field), joined)


@pytest.mark.parametrize("index,field", list(enumerate(FIELDS)))
def test_numpy_fallback_matches_quantlib_on_random_grid(
    grid_and_reference, numpy_blocks, index, field
):
    args, reference = grid_and_reference
    ours = getattr(bs_greeks(*args), field)
    np.testing.assert_allclose(ours, reference[:, index], rtol=RTOL, atol=ATOL)


def test_numba_off_selects_the_numpy_blocks(numpy_blocks):
    assert cpu_kernels() is None


@needs_numba
def test_fused_kernels_are_used_when_numba_imports(monkeypatch):
    monkeypatch.delenv(NUMBA_ENV_VAR, raising=False)
    assert cpu_kernels() is not None


def _both_paths(monkeypatch, kernel, *args):
    monkeypatch.setenv(NUMBA_ENV_VAR, "auto")
    fused = kernel(*args)
    monkeypatch.setenv(NUMBA_ENV_VAR, "off")
    return fused, kernel(*args)


@needs_numba
@pytest.mark.parametrize("field", FIELDS)
def test_fused_and_numpy_paths_agree_beyond_the_quantlib_tolerance(monkeypatch, field):
    # Both compute the same formula; they differ only in how N(x) and the exponentials round.
    S, K, days, r, q, sigma, is_call = _grid(20_000, seed=17)
    args = (S, K, days / 365.0, r, q, sigma, is_call)
    fused, blocks = _both_paths(monkeypatch, bs_greeks, *args)
    np.testing.assert_allclose(getattr(fused, field), getattr(blocks, field), rtol=1e-11, atol=ATOL)


@needs_numba
def test_fused_kernel_broadcasts_scalars_rows_and_columns_like_numpy(monkeypatch):
    # Spot a scalar, strikes a column, expiries a row, the call flag per column: (3, 4) out.
    strikes = np.array([[90.0], [100.0], [110.0]])
    expiries = np.array([0.1, 0.5, 1.0, 3.0])
    is_call = np.array([True, False, True, False])
    fused, blocks = _both_paths(
        monkeypatch, bs_greeks, 100.0, strikes, expiries, 0.03, 0.01, 0.25, is_call
    )
    for field in FIELDS:
        assert getattr(fused, field).shape == (3, 4)
        np.testing.assert_allclose(getattr(fused, field), getattr(blocks, field), rtol=1e-12)


@needs_numba
def test_fused_kernel_gives_nan_for_each_out_of_domain_input_across_all_greeks():
    greeks = bs_greeks(
        np.array([-1.0, 100.0, 100.0, 100.0, np.nan, 100.0]),
        np.array([100.0, 0.0, 100.0, 100.0, 100.0, 100.0]),
        np.array([1.0, 1.0, -0.5, 1.0, 1.0, 1.0]),
        0.01,
        0.0,
        np.array([0.2, 0.2, 0.2, -0.1, 0.2, 0.2]),
        True,
    )
    for field in FIELDS:
        values = getattr(greeks, field)
        assert np.isnan(values[:5]).all()
        assert np.isfinite(values[5])
