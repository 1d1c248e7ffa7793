"""Fused CPU kernels (numba): price, the five greeks and implied volatility, one pass per contract.

Imported through :func:`engine.options.backend.cpu_kernels` by :mod:`engine.options.bsm` and
:mod:`engine.options.iv` when numba is installed; without it they fall back to their blocked
NumPy expressions. Each kernel reads its inputs once and writes its outputs once, and its inner
loops have no branches and no library calls (exp, log and N(x) are written out below), so LLVM
runs them on SIMD lanes: about 2.5x the NumPy blocks per core for price and greeks, 3x for
implied volatility. The kernels release the GIL, and :func:`engine.options.backend.run_ranges`
runs ranges of contracts on a thread pool. The formulas and their order of operations are those
of :mod:`engine.options.bsm`, :mod:`engine.options.iv` and the CuPy kernels in
:mod:`engine.options.gpu` (same solver, step for step, same reason codes). fastmath stays off,
so a contract's result does not depend on whether it fell in a SIMD body or a scalar remainder.
Compiled code is cached on disk (``__pycache__``), so only the first process compiles.

Inputs are 1-D contiguous arrays of the broadcast length or of length 1; ``steps`` holds 1 or 0
per input, and contract i reads ``a[i * step]``: scalars are not copied out to full arrays.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from engine.options.iv import RESIDUAL_TOL, STEPS, IVReason

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
# Below the smallest normal double a normalized time value keeps too few significant digits to
# pin a volatility down (the NumPy path fails there on underflow inside its N(x)).
_TINY = float(np.finfo(np.float64).tiny)
_EXP_MINUS_HALF = math.exp(-0.5)
_OK = int(IVReason.OK)
_BELOW_INTRINSIC = int(IVReason.BELOW_INTRINSIC)
_ABOVE_MAX = int(IVReason.ABOVE_MAX)
_BAD_INPUT = int(IVReason.BAD_INPUT)
_NO_CONVERGENCE = int(IVReason.NO_CONVERGENCE)

# Sizes from which run_ranges splits a call over the thread pool: about a millisecond of work on
# one core (some 25 ns a contract for price and greeks, 150 ns for implied volatility).
GREEKS_PARALLEL_FROM = 32_768
IV_PARALLEL_FROM = 8_192

# error_model="numpy": division by zero gives inf or NaN as in NumPy instead of raising (the
# branch-free loops evaluate every range of N(x) and every side of the solver, used or not).
# fastmath stays off: reassociation would move results by more than the 1e-10 budget allows
# in the cancelling terms of cheap options, and FMA contraction differs between a loop's SIMD
# body and its scalar remainder, which would make results depend on where a contract falls.
_jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)
# Helpers called from the SIMD loops are inlined by numba itself: LLVM leaves large callees as
# calls, and a call in the loop body keeps the loop scalar.
_inline = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False, inline="always")

# Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9), refined
# below by one Halley step to full double precision.
_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690)
_A += (-30.66479806614716, 2.506628277459239)
_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972)
_B += (-13.28068155288572,)
_C = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734)
_C += (4.374664141464968, 2.938163982698783)
_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)


@intrinsic
def _bits_to_float(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@intrinsic
def _float_to_bits(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


# exp and log written out in arithmetic and bit operations (within 2 ulps, subnormals, zeros,
# infinities and NaN included): libm's are calls that keep a loop scalar, these let it run on
# SIMD lanes, about ten times as fast.
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts: k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.0 / math.log(2.0)
_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))  # r^13/13! .. 1
_SQRT2 = math.sqrt(2.0)
_TWO54 = 2.0**54
_MANTISSA = (1 << 52) - 1
_EXP_ONE = 1023 << 52


@_inline
def _exp(x: float) -> float:
    clamped = min(max(x, -745.2), 709.8)
    k = math.floor(clamped * _INV_LN2 + 0.5)
    r = (clamped - k * _LN2_HI) - k * _LN2_LO  # |r| <= ln2 / 2: Taylor to r^13 is exact
    c = _EXP_TAYLOR
    poly = c[0]
    for j in range(1, 14):
        poly = poly * r + c[j]
    # 2^k in two factors so that k down to -1075 (subnormal results) stays representable.
    k_int = np.int64(k)
    k_half = k_int >> 1
    scale_a = _bits_to_float((k_half + 1023) << 52)
    scale_b = _bits_to_float((k_int - k_half + 1023) << 52)
    out = poly * scale_a * scale_b
    out = math.inf if x > 709.8 else out
    out = 0.0 if x < -745.2 else out
    return x if x != x else out


@_inline
def _log(x: float) -> float:
    subnormal = x < _TINY
    bits = _float_to_bits(x * _TWO54 if subnormal else x)
    e = ((bits >> 52) & 0x7FF) - (1023 + 54 if subnormal else 1023)
    m = _bits_to_float((bits & _MANTISSA) | _EXP_ONE)  # x = m 2^e, 1 <= m < 2
    high = m > _SQRT2
    m = 0.5 * m if high else m
    ef = float(e + 1 if high else e)
    f = (m - 1.0) / (m + 1.0)  # ln m = 2 atanh f, |f| <= 0.172
    s = f * f
    series = 1.0 / 21.0
    for j in range(19, 0, -2):
        series = series * s + 1.0 / j
    out = ef * _LN2_HI + (2.0 * f * series + ef * _LN2_LO)
    out = -math.inf if x == 0.0 else out
    out = math.nan if x < 0.0 else out
    return x if (x != x or x == math.inf) else out


# W. J. Cody's rational Chebyshev approximations of erf and erfc (Math. Comp. 23, 1969; Netlib
# specfun CALERF), relative error near 1e-16 and 1e-17. They take exp(-y^2) as a factor, which
# lets the kernels share one exponential between N(d) and phi(d): libm's erfc, which computes
# its own, cost about twice as much per call.
_ERF_A = (3.16112374387056560, 1.13864154151050156e2, 3.77485237685302021e2)
_ERF_A += (3.20937758913846947e3, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3)
_ERF_B += (2.84423683343917062e3,)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594, 6.61191906371416295e1)
_ERFC_C += (2.98635138197400131e2, 8.81952221241769090e2, 1.71204761263407058e3)
_ERFC_C += (2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2)
_ERFC_D += (1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3)
_ERFC_D += (3.43936767414372164e3, 1.23033935480374942e3)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1)
_ERFC_P += (1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242, 1.87295284992346047, 5.27905102951428412e-1)
_ERFC_Q += (6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


@_inline
def _ncdf_g(x: float, g: float) -> float:
    """N(x), given g = exp(-x^2 / 2) (which the caller usually has already).

    All three of Cody's ranges are evaluated and the answer selected, without branches, so the
    compiler can run the loops that call it on SIMD lanes.
    """
    y = x * _SQRT1_2
    z = abs(y)
    t = y * y
    a, b = _ERF_A, _ERF_B
    num = (((a[4] * t + a[0]) * t + a[1]) * t + a[2]) * t + a[3]
    den = (((t + b[0]) * t + b[1]) * t + b[2]) * t + b[3]
    near = 0.5 + 0.5 * (y * num / den)
    c, d = _ERFC_C, _ERFC_D
    num = ((((((c[8] * z + c[0]) * z + c[1]) * z + c[2]) * z + c[3]) * z + c[4]) * z + c[5]) * z
    den = ((((((z + d[0]) * z + d[1]) * z + d[2]) * z + d[3]) * z + d[4]) * z + d[5]) * z
    mid = ((num + c[6]) * z + c[7]) / ((den + d[6]) * z + d[7])
    u = 1.0 / t
    p, q = _ERFC_P, _ERFC_Q
    num = (((p[5] * u + p[0]) * u + p[1]) * u + p[2]) * u + p[3]
    den = (((u + q[0]) * u + q[1]) * u + q[2]) * u + q[3]
    tail = (_INV_SQRT_PI - u * (num * u + p[4]) / (den * u + q[4])) / z
    half_erfc = 0.5 * g * (mid if z <= 4.0 else tail)
    far = half_erfc if x < 0.0 else 1.0 - half_erfc
    return near if z <= 0.46875 else far


@_inline
def _ndtr(x: float) -> float:
    return _ncdf_g(x, _exp(-0.5 * x * x))


@_inline
def _maximum(a: float, b: float) -> float:
    # NaN-propagating, like np.maximum: the NumPy and CUDA solvers fail alike on NaN.
    return math.nan if (a != a) | (b != b) else (a if a > b else b)


@_inline
def _minimum(a: float, b: float) -> float:
    return math.nan if (a != a) | (b != b) else (a if a < b else b)


@_inline
def _ndtri_lower(p: float) -> float:
    """N^{-1}(p) for 0 < p <= 0.5 (the solver's only use): Acklam, then one Halley step."""
    u = math.sqrt(-2.0 * _log(p))
    tail = (((((_C[0] * u + _C[1]) * u + _C[2]) * u + _C[3]) * u + _C[4]) * u + _C[5]) / (
        (((_D[0] * u + _D[1]) * u + _D[2]) * u + _D[3]) * u + 1.0
    )
    v = p - 0.5
    u = v * v
    central = (
        (((((_A[0] * u + _A[1]) * u + _A[2]) * u + _A[3]) * u + _A[4]) * u + _A[5])
        * v
        / (((((_B[0] * u + _B[1]) * u + _B[2]) * u + _B[3]) * u + _B[4]) * u + 1.0)
    )
    x = tail if p < 0.02425 else central
    e = _ndtr(x) - p
    g = e * _SQRT_2PI * _exp(0.5 * x * x)
    return x - g / (1.0 + 0.5 * x * g)


@_inline
def _bsm(spot, strike, tau, rate, div, vol, w):
    """Shared head of the price and greeks kernels (w = 1 for a call, -1 for a put):
    (valid, sqrt T, sigma sqrt T, e^{-qT}, S e^{-qT}, e^{-d1^2/2}, w N(w d1), w K e^{-rT} N(w d2)).
    """
    valid = (spot > 0.0) & (strike > 0.0) & (tau >= 0.0) & (vol >= 0.0)
    sqrt_t = math.sqrt(tau)
    sd = vol * sqrt_t
    d1 = (_log(spot / strike) + (rate - div) * tau) / sd + 0.5 * sd
    d2 = d1 - sd
    dq = _exp(-div * tau)
    fwd_s = spot * dq
    disc_k = strike * _exp(-rate * tau)
    g1 = _exp(-0.5 * d1 * d1)
    wn1 = w * _ncdf_g(w * d1, g1)
    wkn2 = w * disc_k * _ncdf_g(w * d2, _exp(-0.5 * d2 * d2))
    return valid, sqrt_t, sd, dq, fwd_s, g1, wn1, wkn2


# The loops below have no branches (invalid inputs are masked with a select), so they compile
# to SIMD code over 8 contracts at a time; that needs unit strides and few arrays that might
# alias, so each chunk of contracts is copied into contiguous scratch rows, computed from those
# rows into scratch rows, and copied out.
_CHUNK = 256


@_inline
def _gather(S, K, T, r, q, sigma, is_call, steps, first, m, rows) -> None:
    for j in range(m):
        i = first + j
        rows[0, j], rows[1, j], rows[2, j] = S[i * steps[0]], K[i * steps[1]], T[i * steps[2]]
        rows[3, j], rows[4, j], rows[5, j] = r[i * steps[3]], q[i * steps[4]], sigma[i * steps[5]]
        rows[6, j] = 1.0 if is_call[i * steps[6]] else -1.0


@_jit
def _price_range(S, K, T, r, q, sigma, is_call, steps, price, start, stop):
    rows = np.empty((7, _CHUNK))
    res = np.empty(_CHUNK)
    for first in range(start, stop, _CHUNK):
        m = min(_CHUNK, stop - first)
        _gather(S, K, T, r, q, sigma, is_call, steps, first, m, rows)
        for j in range(m):
            valid, _, _, _, fwd_s, _, wn1, wkn2 = _bsm(
                rows[0, j], rows[1, j], rows[2, j], rows[3, j], rows[4, j], rows[5, j], rows[6, j]
            )
            res[j] = fwd_s * wn1 - wkn2 if valid else math.nan
        price[first : first + m] = res[:m]


@_jit
def _greeks_range(S, K, T, r, q, sigma, is_call, steps, outs, start, stop):
    rows = np.empty((7, _CHUNK))
    res = np.empty((6, _CHUNK))
    nan = math.nan
    for first in range(start, stop, _CHUNK):
        m = min(_CHUNK, stop - first)
        _gather(S, K, T, r, q, sigma, is_call, steps, first, m, rows)
        for j in range(m):
            spot, tau, rate, div, vol = rows[0, j], rows[2, j], rows[3, j], rows[4, j], rows[5, j]
            valid, sqrt_t, sd, dq, fwd_s, g1, wn1, wkn2 = _bsm(
                spot, rows[1, j], tau, rate, div, vol, rows[6, j]
            )
            pdf_s = fwd_s * _INV_SQRT_2PI * g1  # S e^{-qT} phi(d1)
            theta = (div * fwd_s * wn1 - rate * wkn2) - 0.5 * pdf_s * vol / sqrt_t
            res[0, j] = fwd_s * wn1 - wkn2 if valid else nan
            res[1, j] = dq * wn1 if valid else nan
            res[2, j] = pdf_s / (spot * spot * sd) if valid else nan
            res[3, j] = theta if valid else nan
            res[4, j] = pdf_s * sqrt_t if valid else nan
            res[5, j] = tau * wkn2 if valid else nan
        for k in range(6):
            outs[k][first : first + m] = res[k, :m]


@_inline
def _normalized_call(x: float, s: float, ex: float, emx: float) -> tuple[float, float]:
    """b(x, s) of engine.options.iv and e^{-(h^2 + t^2)/2}, with h = x / s and t = s / 2."""
    h = x / s
    t = 0.5 * s
    # phi(h +- t) = phi_0 e^{-+x/2} with phi_0 = e^{-(h^2 + t^2)/2}, since h t = x / 2: one
    # exponential serves both N() and the vega.
    g0 = _exp(-0.5 * (h * h + t * t))
    return ex * _ncdf_g(h + t, g0 * emx) - emx * _ncdf_g(h - t, g0 * ex), g0


@_inline
def _iv_setup(price, spot, strike, tau, rate, div, w):
    """Checks and starting point of the solver of engine.options.iv for contract j of a chunk.

    Returns the reason code, x, beta, ln beta, e^{x/2}, e^{-x/2}, s_c, the side (1 high,
    0 low) and the starting s. Lanes that fail a check are parked on a harmless problem, as in the NumPy path,
    so the branch-free steps run on them without producing anything.
    """
    # v - v is 0 exactly when v is finite (math.isfinite is a call, which keeps loops scalar).
    finite = (
        price - price + spot - spot + strike - strike + tau - tau + rate - rate + div - div
    ) == 0.0
    bad = not (finite & (spot > 0.0) & (strike > 0.0) & (tau > 0.0) & (price >= 0.0))
    fwd = spot * _exp((rate - div) * tau)
    undisc = price * _exp(rate * tau)
    intrinsic = _maximum(w * (fwd - strike), 0.0)
    cap = fwd if w > 0.0 else strike
    time_value = undisc - intrinsic
    x = -abs(_log(fwd / strike))
    beta = time_value / math.sqrt(fwd * strike)
    ex = _exp(0.5 * x)
    good = not bad
    below = good & (time_value <= 0.0)
    above = good & (not below) & ((undisc >= cap) | (beta >= ex))
    tiny = good & (not below) & (not above) & (beta < _TINY)
    code = _NO_CONVERGENCE if tiny else _OK
    code = _ABOVE_MAX if above else code
    code = _BELOW_INTRINSIC if below else code
    code = _BAD_INPUT if bad else code
    active = code == _OK
    x = x if active else -1.0
    beta = beta if active else 0.1
    ex = ex if active else _EXP_MINUS_HALF
    emx = _exp(-0.5 * x)
    s_c = _maximum(math.sqrt(-2.0 * x), 1e-8)
    b_c = _normalized_call(x, s_c, ex, emx)[0]
    high = beta >= b_c
    log_beta = _log(beta)
    arg = _minimum(_maximum((ex - beta) / (ex + emx), 1e-300), 0.5)
    s_high = _maximum(-2.0 * _ndtri_lower(arg), s_c)
    nl = -log_beta
    u = 4.0 * (nl - math.sqrt(_maximum(nl * nl - 0.25 * x * x, 0.0)))
    s_low = _minimum(_maximum(math.sqrt(u), _SQRT_2PI * beta), s_c)
    side = 1.0 if high else 0.0
    return float(code), x, beta, log_beta, ex, emx, s_c, side, s_high if high else s_low


@_inline
def _iv_step(x, beta, log_beta, ex, emx, s_c, side, s):
    """One safeguarded Halley step of engine.options.iv: (next s, residual before the step)."""
    high = side > 0.5
    b, g0 = _normalized_call(x, s, ex, emx)
    vega = g0 * _INV_SQRT_2PI
    curv = x * x / (s * s * s) - 0.25 * s  # b'' / b'
    dlog = vega / b
    f = b - beta if high else _log(b) - log_beta
    f1 = vega if high else dlog
    f2 = vega * curv if high else dlog * (curv - dlog)
    newton = -f / f1
    step = newton / _maximum(1.0 + 0.5 * newton * f2 / f1, 0.5)
    s_high = _maximum(s + step, s_c)
    s_low = _minimum(_maximum(s + step, 0.5 * s), s_c)
    return (s_high if high else s_low), (f / beta if high else f)


@_jit
def _iv_range(price, S, K, T, r, q, is_call, steps, sigma, reason, start, stop):
    rows = np.empty((7, _CHUNK))
    state = np.empty((8, _CHUNK))
    s_now = np.empty(_CHUNK)
    s_next = np.empty(_CHUNK)
    residual = np.empty(_CHUNK)
    for first in range(start, stop, _CHUNK):
        m = min(_CHUNK, stop - first)
        _gather(price, S, K, T, r, q, is_call, steps, first, m, rows)
        for j in range(m):
            (
                state[0, j], state[1, j], state[2, j], state[3, j], state[4, j], state[5, j],
                state[6, j], state[7, j], s_now[j],
            ) = _iv_setup(
                rows[0, j], rows[1, j], rows[2, j], rows[3, j], rows[4, j], rows[5, j], rows[6, j]
            )  # fmt: skip
        # Step by step across the chunk: each step of one contract waits on its last, so
        # contracts side by side are what fills the SIMD lanes. s moves between two arrays
        # because updating one in place keeps the compiler from vectorizing the loop.
        for _ in range(STEPS):
            for j in range(m):
                s_next[j], residual[j] = _iv_step(
                    state[1, j], state[2, j], state[3, j], state[4, j], state[5, j], state[6, j],
                    state[7, j], s_now[j],
                )  # fmt: skip
            s_now, s_next = s_next, s_now
        for j in range(m):
            vol = s_now[j] / math.sqrt(rows[3, j])
            ok = (vol - vol == 0.0) & (abs(residual[j]) <= RESIDUAL_TOL)  # finite and resolved
            code = state[0, j]
            code = _NO_CONVERGENCE if (code == _OK) & (not ok) else code
            rows[0, j] = vol if code == _OK else math.nan
            state[0, j] = code
        for j in range(m):
            sigma[first + j] = rows[0, j]
            reason[first + j] = np.int8(state[0, j])


def strided_inputs(flat: list) -> tuple[list[np.ndarray], np.ndarray]:
    """Turn :func:`engine.options.backend.broadcast_inputs` output into kernel arguments.

    Full-size inputs arrive as flat float64 or bool arrays and pass through (step 1); scalars
    become length-1 arrays read with step 0, so every call has one type signature (one compiled
    specialization) whatever mix of scalars and arrays the caller passed.
    """
    arrays: list[np.ndarray] = []
    steps: list[int] = []
    for a in flat:
        if isinstance(a, np.ndarray):
            arrays.append(a)
            steps.append(1)
        else:
            arrays.append(np.full(1, a, dtype=np.bool_ if isinstance(a, bool) else np.float64))
            steps.append(0)
    return arrays, np.array(steps, dtype=np.int64)


def price_range(ins: list[np.ndarray], steps: np.ndarray, outs: list[np.ndarray], a: int, b: int):
    """Fill ``outs[0][a:b]`` with Black-Scholes-Merton prices."""
    _price_range(*ins, steps, outs[0], a, b)


def greeks_range(ins: list[np.ndarray], steps: np.ndarray, outs: list[np.ndarray], a: int, b: int):
    """Fill ``[a:b]`` of the six outputs (price, delta, gamma, theta, vega, rho)."""
    _greeks_range(*ins, steps, tuple(outs), a, b)


def iv_range(ins: list[np.ndarray], steps: np.ndarray, sigma, reason, a: int, b: int) -> None:
    """Fill ``sigma[a:b]`` (float64) and ``reason[a:b]`` (int8 :class:`IVReason` codes)."""
    _iv_range(*ins, steps, sigma, reason, a, b)
