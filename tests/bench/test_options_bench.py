"""Options kernels: price+greeks/s and IV/s by batch size, and a 10,000-contract chain repriced.

Each figure sits beside a reference measured in the same run: QuantLib's AnalyticEuropeanEngine
priced option by option (a loop over a few thousand contracts) for price+greeks, vollib's
Let's Be Rational called option by option for IV, and the CPU figure of this run for the GPU
ones. The CPU figures come from the fused numba kernels when numba is installed, and each size
test also records the NumPy-block fallback (``TICKDECK_NUMBA=off``) at 1e6 in the same run.
Throughput is the best of a few repeats after a warm-up (which also compiles the numba kernels,
or loads them from their disk cache). The GPU section runs only where
CuPy sees a CUDA device; its timings synchronize the device, with inputs already on it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import QuantLib as ql
from scipy.special import ndtr
from vollib.black_scholes_merton.implied_volatility import implied_volatility as vollib_iv

from engine.options import bs_greeks, bs_price, implied_vol
from engine.options.backend import NUMBA_ENV_VAR, cpu_kernels
from tests.bench.results import Figure, record

CPU_SIZES = (1_000, 10_000, 100_000, 1_000_000)
GPU_SIZES = (*CPU_SIZES, 10_000_000)
CHAIN = 10_000
LOOPED = 2_000  # contracts priced one by one for the QuantLib and vollib references


def _contracts(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    S = rng.uniform(50.0, 150.0, n)
    T = rng.choice(np.arange(1, 731), n) / 365.0
    sigma = rng.uniform(0.08, 0.9, n)
    K = S * np.exp(rng.uniform(-2.0, 2.0, n) * sigma * np.sqrt(T))
    r = rng.uniform(0.0, 0.06, n)
    q = rng.uniform(0.0, 0.03, n)
    is_call = rng.random(n) < 0.5
    return S, K, T, r, q, sigma, is_call


def _best_rate(n: int, run, repeats: int = 5, sync=lambda: None) -> float:
    run()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return n / best


def _quantlib_loop(args) -> tuple[float, np.ndarray]:
    """Options/s of QuantLib pricing and taking greeks one contract at a time, and its values."""
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot, rate, div, vol = (
        ql.SimpleQuote(1.0),
        ql.SimpleQuote(0.0),
        ql.SimpleQuote(0.0),
        ql.SimpleQuote(0.1),
    )
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(div), dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(rate), dc)),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol), dc)
        ),
    )
    engine = ql.AnalyticEuropeanEngine(process)
    rows = list(zip(*args, strict=True))
    options = []
    for _S, K, T, _r, _q, _sigma, is_call in rows:
        kind = ql.Option.Call if is_call else ql.Option.Put
        option = ql.EuropeanOption(
            ql.PlainVanillaPayoff(kind, float(K)), ql.EuropeanExercise(today + round(T * 365))
        )
        option.setPricingEngine(engine)
        options.append(option)
    values = np.empty((len(rows), 6))
    start = time.perf_counter()
    for i, (option, (S, _K, _T, r, q, sigma, _c)) in enumerate(zip(options, rows, strict=True)):
        spot.setValue(float(S))
        rate.setValue(float(r))
        div.setValue(float(q))
        vol.setValue(float(sigma))
        values[i] = (
            option.NPV(),
            option.delta(),
            option.gamma(),
            option.theta(),
            option.vega(),
            option.rho(),
        )
    return len(rows) / (time.perf_counter() - start), values


def _plain_numpy_greeks(S, K, T, r, q, sigma, is_call):
    """Reference: the textbook whole-array NumPy expression, no blocking or threads."""
    w = np.where(is_call, 1.0, -1.0)
    sqrt_t = np.sqrt(T)
    sd = sigma * sqrt_t
    d1 = (np.log(S / K) + (r - q) * T) / sd + 0.5 * sd
    d2 = d1 - sd
    dq, dr = np.exp(-q * T), np.exp(-r * T)
    n1, n2 = ndtr(w * d1), ndtr(w * d2)
    pdf = np.exp(-0.5 * d1 * d1) / np.sqrt(2 * np.pi)
    price = w * (S * dq * n1 - K * dr * n2)
    delta = w * dq * n1
    gamma = dq * pdf / (S * sd)
    vega = S * dq * pdf * sqrt_t
    theta = -S * dq * pdf * sigma / (2 * sqrt_t) - w * r * K * dr * n2 + w * q * S * dq * n1
    rho = w * K * T * dr * n2
    return price, delta, gamma, theta, vega, rho


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels():
    """Compile (or load from numba's disk cache) the fused CPU kernels outside any timing."""
    args = _contracts(100)
    implied_vol(bs_price(*args), *args[:5], args[6])
    bs_greeks(*args)


def _cpu_path() -> str:
    return "numba" if cpu_kernels() is not None else "numpy blocks"


@pytest.fixture(scope="module")
def references():
    args = _contracts(LOOPED, seed=1)
    ql_rate, ql_values = _quantlib_loop(args)
    ours = bs_greeks(*args)
    ours_values = np.column_stack(
        [ours.price, ours.delta, ours.gamma, ours.theta, ours.vega, ours.rho]
    )
    max_rel = float(np.max(np.abs(ours_values - ql_values) / np.maximum(np.abs(ql_values), 1e-12)))
    price = ours.price
    S, K, T, r, q, _sigma, is_call = args
    start = time.perf_counter()
    for p, s, k, t, rr, qq, c in zip(price, S, K, T, r, q, is_call, strict=True):
        vollib_iv(p, s, k, t, rr, qq, "c" if c else "p")
    vollib_rate = LOOPED / (time.perf_counter() - start)
    return ql_rate, vollib_rate, max_rel


def _chain(seed: int = 2):
    """A 10,000-contract chain around one underlying: mids to invert, then greeks at those IVs."""
    S, K, T, r, q, sigma, is_call = _contracts(CHAIN, seed)
    S = np.full(CHAIN, 100.0)
    mid = bs_price(S, K, T, r, q, sigma, is_call)
    return mid, S, K, T, r, q, is_call


def _reprice(mid, S, K, T, r, q, is_call):
    iv = implied_vol(mid, S, K, T, r, q, is_call)
    return bs_greeks(S, K, T, r, q, iv, is_call)


def test_cpu_price_and_greeks_throughput(references, monkeypatch):
    ql_rate, _vollib_rate, max_rel = references
    assert max_rel <= 1e-10
    path = _cpu_path()
    for n in CPU_SIZES:
        args = _contracts(n)
        rate = _best_rate(n, lambda args=args: bs_greeks(*args))
        record(
            Figure(
                f"options.cpu.greeks_per_s.{n:.0e}", rate, "options/s",
                f"QuantLib analytic per option ({path})", ql_rate, rate / ql_rate,
                ">= 20M/s on 2 cores",
            )
        )  # fmt: skip
    args = _contracts(CPU_SIZES[-1])
    plain = _best_rate(CPU_SIZES[-1], lambda: _plain_numpy_greeks(*args), repeats=3)
    record(
        Figure(
            "options.cpu.greeks_per_s.plain_numpy_1e6", plain, "options/s",
            "QuantLib analytic per option", ql_rate, plain / ql_rate,
        )
    )  # fmt: skip
    monkeypatch.setenv(NUMBA_ENV_VAR, "off")
    blocks = _best_rate(CPU_SIZES[-1], lambda: bs_greeks(*args), repeats=3)
    record(
        Figure(
            "options.cpu.greeks_per_s.numpy_blocks_1e6", blocks, "options/s",
            "QuantLib analytic per option", ql_rate, blocks / ql_rate,
        )
    )  # fmt: skip


def test_cpu_implied_vol_throughput(references, monkeypatch):
    _ql_rate, vollib_rate, _ = references
    path = _cpu_path()
    for n in CPU_SIZES:
        S, K, T, r, q, sigma, is_call = _contracts(n)
        price = bs_price(S, K, T, r, q, sigma, is_call)
        rate = _best_rate(n, lambda a=(price, S, K, T, r, q, is_call): implied_vol(*a), repeats=3)
        record(
            Figure(
                f"options.cpu.iv_per_s.{n:.0e}", rate, "options/s",
                f"vollib per option ({path})", vollib_rate, rate / vollib_rate,
                ">= 3M/s on 2 cores",
            )
        )  # fmt: skip
    monkeypatch.setenv(NUMBA_ENV_VAR, "off")
    n = CPU_SIZES[-1]
    blocks = _best_rate(n, lambda: implied_vol(price, S, K, T, r, q, is_call), repeats=3)
    record(
        Figure(
            "options.cpu.iv_per_s.numpy_blocks_1e6", blocks, "options/s",
            "vollib per option", vollib_rate, blocks / vollib_rate,
        )
    )  # fmt: skip


def test_cpu_chain_reprice_10k(references):
    ql_rate, vollib_rate, _ = references
    chain = _chain()
    per_second = _best_rate(1, lambda: _reprice(*chain))
    looped_ms = 1e3 * CHAIN * (1.0 / vollib_rate + 1.0 / ql_rate)
    record(
        Figure(
            "options.cpu.chain_10k_reprice_ms", 1e3 / per_second, "ms",
            "vollib IV + QuantLib greeks per contract (extrapolated)", looped_ms,
            (1e3 / per_second) / looped_ms,
        )
    )  # fmt: skip


def _cupy():
    cp = pytest.importorskip("cupy", reason="cupy is not installed (pip install .[gpu])")
    try:
        present = cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        present = False
    if not present:
        pytest.skip("cupy sees no CUDA device")
    return cp


@pytest.mark.gpu
def test_gpu_throughput_and_chain():
    cp = _cupy()
    sync = cp.cuda.Device().synchronize
    cpu_greeks: dict[int, float] = {}
    cpu_iv: dict[int, float] = {}
    for n in CPU_SIZES:
        S, K, T, r, q, _sigma, is_call = args = _contracts(n)
        price = bs_price(*args)
        cpu_greeks[n] = _best_rate(n, lambda a=args: bs_greeks(*a), repeats=3)
        cpu_iv[n] = _best_rate(
            n, lambda a=(price, S, K, T, r, q, is_call): implied_vol(*a), repeats=3
        )
    for n in GPU_SIZES:
        host = _contracts(n)
        device = [cp.asarray(a) for a in host]
        S, K, T, r, q, _sigma, is_call = device
        price = bs_price(*device)
        greeks = _best_rate(n, lambda d=device: bs_greeks(*d), repeats=10, sync=sync)
        iv = _best_rate(
            n, lambda a=(price, S, K, T, r, q, is_call): implied_vol(*a), repeats=5, sync=sync
        )
        ref = min(n, CPU_SIZES[-1])
        record(
            Figure(
                f"options.gpu.greeks_per_s.{n:.0e}", greeks, "options/s",
                f"this run's CPU at {ref:.0e}", cpu_greeks[ref], greeks / cpu_greeks[ref],
                ">= 5G/s on device",
            )
        )  # fmt: skip
        record(
            Figure(
                f"options.gpu.iv_per_s.{n:.0e}", iv, "options/s",
                f"this run's CPU at {ref:.0e}", cpu_iv[ref], iv / cpu_iv[ref],
            )
        )  # fmt: skip
        del device, price
    host_chain = _chain()
    cpu_ms = 1e3 / _best_rate(1, lambda: _reprice(*host_chain))
    device_chain = [cp.asarray(a) for a in host_chain]
    gpu_ms = 1e3 / _best_rate(1, lambda: _reprice(*device_chain), repeats=20, sync=sync)
    record(
        Figure(
            "options.gpu.chain_10k_reprice_ms", gpu_ms, "ms", "this run's CPU", cpu_ms,
            gpu_ms / cpu_ms, "< 1 ms",
        )
    )  # fmt: skip
