"""Fused CuPy kernels: price and all five greeks in one pass over the inputs, on the GPU.

Imported lazily by :mod:`engine.options.bsm` and :mod:`engine.options.iv` when their inputs
are CuPy arrays, so a machine without CuPy never imports it. The formulas and conventions are
those of :mod:`engine.options.bsm` (theta per year, vega and rho per 1.00); N(x) is
``0.5 * erfc(-x / sqrt 2)`` in double precision, which agrees with SciPy's ``ndtr`` to a few
ulps, so both backends agree to far better than 1e-10.
"""

from __future__ import annotations

from functools import cache

import cupy as cp

from engine.options.bsm import Greeks
from engine.options.iv import RESIDUAL_TOL, STEPS, IVReason

# Lower-case names: CuPy reads single capitals such as T as type placeholders.
_PARAMS = (
    "float64 spot, float64 strike, float64 tau, float64 r, float64 q, float64 sigma, bool call"
)

_PRELUDE = r"""
const double w = call ? 1.0 : -1.0;
const double sqrt_t = sqrt(tau);
const double sd = sigma * sqrt_t;
const double d1 = (log(spot / strike) + (r - q) * tau) / sd + 0.5 * sd;
const double d2 = d1 - sd;
const double dq = exp(-q * tau);
const double fwd_s = spot * dq;
const double disc_k = strike * exp(-r * tau);
const double n1 = 0.5 * erfc(-w * d1 * 0.7071067811865476);
const double n2 = 0.5 * erfc(-w * d2 * 0.7071067811865476);
const bool valid = spot > 0.0 && strike > 0.0 && tau >= 0.0 && sigma >= 0.0;
"""

_PRICE_BODY = (
    _PRELUDE
    + r"""
price = valid ? w * (fwd_s * n1 - disc_k * n2) : TICKDECK_NAN;
"""
)

_GREEKS_BODY = (
    _PRELUDE
    + r"""
if (!valid) {
    price = delta = gamma = theta = vega = rho = TICKDECK_NAN;
} else {
    const double wn1 = w * n1;
    const double wkn2 = w * disc_k * n2;
    const double pdf_s = fwd_s * 0.3989422804014327 * exp(-0.5 * d1 * d1);
    price = fwd_s * wn1 - wkn2;
    delta = dq * wn1;
    gamma = pdf_s / (spot * spot * sd);
    vega = pdf_s * sqrt_t;
    theta = (q * fwd_s * wn1 - r * wkn2) - 0.5 * pdf_s * sigma / sqrt_t;
    rho = tau * wkn2;
}
"""
)


# The solver of engine.options.iv, step for step, one thread per contract. nmax/nmin propagate
# NaN like np.maximum/np.minimum (fmax/fmin would drop it) so both backends fail alike.
_IV_BODY = r"""
do {
    const double w = call ? 1.0 : -1.0;
    const bool finite = isfinite(price) && isfinite(spot) && isfinite(strike) && isfinite(tau)
        && isfinite(r) && isfinite(q);
    if (!(finite && spot > 0.0 && strike > 0.0 && tau > 0.0 && price >= 0.0)) {
        sigma = TICKDECK_NAN; reason = IV_BAD_INPUT; break;
    }
    const double fwd = spot * exp((r - q) * tau);
    const double undisc = price * exp(r * tau);
    const double intrinsic = nmax(w * (fwd - strike), 0.0);
    const double cap = call ? fwd : strike;
    const double time_value = undisc - intrinsic;
    if (time_value <= 0.0) { sigma = TICKDECK_NAN; reason = IV_BELOW_INTRINSIC; break; }
    const double x = -fabs(log(fwd / strike));
    const double beta = time_value / sqrt(fwd * strike);
    const double b_max = exp(0.5 * x);
    if (undisc >= cap || beta >= b_max) { sigma = TICKDECK_NAN; reason = IV_ABOVE_MAX; break; }
    const double ex = exp(0.5 * x);
    const double emx = exp(-0.5 * x);
    const double s_c = nmax(sqrt(-2.0 * x), 1e-8);
    const double h_c = x / s_c;
    const double b_c = ex * normcdf(h_c + 0.5 * s_c) - emx * normcdf(h_c - 0.5 * s_c);
    const bool high = beta >= b_c;
    const double log_beta = log(beta);
    double s;
    if (high) {
        const double arg = nmin(nmax((b_max - beta) / (2.0 * cosh(0.5 * x)), 1e-300), 0.5);
        s = nmax(-2.0 * normcdfinv(arg), s_c);
    } else {
        const double nl = -log_beta;
        const double u = 4.0 * (nl - sqrt(nmax(nl * nl - 0.25 * x * x, 0.0)));
        s = nmin(nmax(sqrt(u), 2.5066282746310002 * beta), s_c);
    }
    double residual = 0.0;
    for (int k = 0; k < STEPS; ++k) {
        const double h = x / s;
        const double t = 0.5 * s;
        const double b = ex * normcdf(h + t) - emx * normcdf(h - t);
        const double vega = exp(-0.5 * (h * h + t * t)) * 0.3989422804014327;
        const double curv = x * x / (s * s * s) - 0.25 * s;
        const double dlog = vega / b;
        const double f = high ? b - beta : log(b) - log_beta;
        const double f1 = high ? vega : dlog;
        const double f2 = high ? vega * curv : dlog * (curv - dlog);
        const double newton = -f / f1;
        const double step = newton / nmax(1.0 + 0.5 * newton * f2 / f1, 0.5);
        residual = high ? f / beta : f;
        s = high ? nmax(s + step, s_c) : nmin(nmax(s + step, 0.5 * s), s_c);
    }
    const double vol = s / sqrt(tau);
    if (!(isfinite(vol) && fabs(residual) <= RESIDUAL_TOL)) {
        sigma = TICKDECK_NAN; reason = IV_NO_CONVERGENCE; break;
    }
    sigma = vol;
    reason = IV_OK;
} while (0);
"""

_NAN_PREAMBLE = "#define TICKDECK_NAN (__longlong_as_double(0x7ff8000000000000ULL))\n"

_IV_PREAMBLE = (
    _NAN_PREAMBLE
    + f"#define STEPS {STEPS}\n#define RESIDUAL_TOL {RESIDUAL_TOL!r}\n"
    + "".join(f"#define IV_{reason.name} {int(reason)}\n" for reason in IVReason)
    + r"""
__device__ inline double nmax(double a, double b) {
    return (a != a || b != b) ? TICKDECK_NAN : (a > b ? a : b);
}
__device__ inline double nmin(double a, double b) {
    return (a != a || b != b) ? TICKDECK_NAN : (a < b ? a : b);
}
"""
)


@cache
def _iv_kernel() -> cp.ElementwiseKernel:
    return cp.ElementwiseKernel(
        "float64 price, " + _PARAMS.replace(", float64 sigma", ""),
        "float64 sigma, int8 reason",
        _IV_BODY,
        "tickdeck_implied_vol",
        preamble=_IV_PREAMBLE,
    )


@cache
def _kernels() -> tuple[cp.ElementwiseKernel, cp.ElementwiseKernel]:
    preamble = _NAN_PREAMBLE
    price = cp.ElementwiseKernel(
        _PARAMS, "float64 price", _PRICE_BODY, "tickdeck_bs_price", preamble=preamble
    )
    greeks = cp.ElementwiseKernel(
        _PARAMS,
        "float64 price, float64 delta, float64 gamma, float64 theta, float64 vega, float64 rho",
        _GREEKS_BODY,
        "tickdeck_bs_greeks",
        preamble=preamble,
    )
    return price, greeks


def _device_args(S, K, T, r, q, sigma, is_call) -> list:
    floats = [cp.asarray(a, dtype=cp.float64) for a in (S, K, T, r, q, sigma)]
    return [*floats, cp.asarray(is_call, dtype=cp.bool_)]


def bs_price_gpu(S, K, T, r, q, sigma, is_call) -> cp.ndarray:
    """Black-Scholes-Merton prices on the GPU (one fused kernel); CuPy float64 array."""
    return _kernels()[0](*_device_args(S, K, T, r, q, sigma, is_call))


def bs_greeks_gpu(S, K, T, r, q, sigma, is_call) -> Greeks:
    """Price and the five greeks on the GPU in a single fused kernel launch."""
    return Greeks(*_kernels()[1](*_device_args(S, K, T, r, q, sigma, is_call)))


def implied_vol_gpu(price, S, K, T, r, q, is_call) -> tuple[cp.ndarray, cp.ndarray]:
    """Implied volatility on the GPU in one fused kernel: (sigma, int8 reason codes)."""
    floats = [cp.asarray(a, dtype=cp.float64) for a in (price, S, K, T, r, q)]
    return _iv_kernel()(*floats, cp.asarray(is_call, dtype=cp.bool_))
