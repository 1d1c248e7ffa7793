"""The same kernels on CuPy: results agree with the CPU to 1e-10. Skipped without a CUDA GPU."""

from __future__ import annotations

import numpy as np
import pytest

from engine.options import IVReason, american_price, backend, bs_greeks, bs_price, implied_vol

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy", reason="cupy is not installed (pip install .[gpu])")


def _device_count() -> int:
    try:
        return cp.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


if _device_count() < 1:
    pytest.skip("cupy is installed but sees no CUDA device", allow_module_level=True)

FIELDS = ("price", "delta", "gamma", "theta", "vega", "rho")


def _contracts(n: int, seed: int):
    rng = np.random.default_rng(seed)
    S = rng.uniform(20.0, 500.0, n)
    T = np.exp(rng.uniform(np.log(1.0 / (365.0 * 24.0)), np.log(10.0), n))
    sigma = rng.uniform(0.03, 1.5, n)
    K = S * np.exp(rng.uniform(-3.0, 3.0, n) * sigma * np.sqrt(T))
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0.0, 0.05, n)
    is_call = rng.random(n) < 0.5
    return S, K, T, r, q, sigma, is_call


def _close(gpu, cpu) -> bool:
    gpu = cp.asnumpy(gpu)
    both_nan = np.isnan(gpu) & np.isnan(cpu)
    ok = np.abs(gpu - cpu) <= 1e-10 * np.abs(cpu) + 1e-12
    return bool(np.all(both_nan | ok))


@pytest.mark.parametrize("field", FIELDS)
def test_fused_greeks_kernel_matches_cpu(field):
    args = _contracts(200_000, seed=1)
    cpu = getattr(bs_greeks(*args), field)
    gpu = getattr(bs_greeks(*(cp.asarray(a) for a in args)), field)
    assert _close(gpu, cpu)


def test_price_kernel_matches_cpu():
    args = _contracts(200_000, seed=2)
    assert _close(bs_price(*(cp.asarray(a) for a in args)), bs_price(*args))


def test_implied_vol_matches_cpu_with_same_reasons():
    S, K, T, r, q, sigma, is_call = _contracts(200_000, seed=3)
    price = bs_price(S, K, T, r, q, sigma, is_call)
    price[:10] = -1.0  # a few bad inputs so the reason codes are compared too
    cpu_iv, cpu_reason = implied_vol(price, S, K, T, r, q, is_call, return_reason=True)
    device = [cp.asarray(a) for a in (price, S, K, T, r, q, is_call)]
    gpu_iv, gpu_reason = implied_vol(*device, return_reason=True)
    assert _close(gpu_iv, cpu_iv)
    np.testing.assert_array_equal(cp.asnumpy(gpu_reason), cpu_reason)
    assert (cpu_reason[:10] == IVReason.BAD_INPUT).all()


def test_results_stay_on_the_device():
    greeks = bs_greeks(cp.asarray([100.0]), 100.0, 0.5, 0.01, 0.0, 0.2, True)
    assert isinstance(greeks.vega, cp.ndarray)


def test_out_of_domain_inputs_give_nan_on_gpu():
    prices = bs_price(cp.asarray([-1.0, 100.0]), cp.asarray([100.0, 0.0]), 1.0, 0.0, 0.0, 0.2, True)
    assert bool(cp.isnan(prices).all())


def test_backend_on_selects_cupy(monkeypatch):
    monkeypatch.setenv("TICKDECK_GPU", "on")
    chosen = backend()
    assert chosen.is_gpu
    assert chosen.xp is cp
    assert chosen.device


def test_american_price_takes_device_inputs_and_answers_on_the_host():
    strikes = np.array([90.0, 100.0, 110.0])
    on_host = american_price(100.0, strikes, 0.5, 0.03, 0.01, 0.25, False, steps=101)
    from_device = american_price(
        100.0, cp.asarray(strikes), 0.5, 0.03, 0.01, 0.25, False, steps=101
    )
    np.testing.assert_array_equal(from_device, on_host)
