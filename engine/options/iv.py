"""Implied volatility of European options, vectorized, to the accuracy the price allows.

The price is moved to normalized, undiscounted forward space: with F = S e^{(r-q)T},
x = ln(F/K) and s = sigma sqrt(T), the time value of either option divided by sqrt(F K)
equals the normalized out-of-the-money call b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2)
with x <= 0 (put-call parity). b is convex in s below the inflection point s_c = sqrt(2|x|)
and concave above it; ln b is concave. So the solver runs Halley steps on ln b when the target
lies below b(x, s_c) and on b itself above, starting on the near side of the root (a lower
bound from the large-|x/s| asymptotic or from b <= s / sqrt(2 pi), or from s_c), and clamps
every step to the side of s_c that holds the root. A fixed number of steps (no data-dependent
loop) makes it branch-free on a GPU; seven reach the conditioning limit on a million random
contracts from deep in to deep out of the money and one hour to ten years (six left three of
them short, where the root sits just past s_c and the high-side guess starts far right).

On the CPU the same solver runs contract by contract in a fused numba loop
(:mod:`engine.options.cpu`) when numba imports; the NumPy version below is the fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import IntEnum
from functools import partial

import numpy as np
from scipy.special import ndtr, ndtri

from engine.options.backend import (
    array_module,
    broadcast_inputs,
    cpu_kernels,
    run_blocks,
    run_ranges,
)

STEPS = 7
RESIDUAL_TOL = 1e-8  # relative mismatch of the normalized price before the last step
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class IVReason(IntEnum):
    """Why an implied volatility is NaN (``OK`` when it is not)."""

    OK = 0
    BELOW_INTRINSIC = 1  # price at or under the discounted intrinsic value
    ABOVE_MAX = 2  # price at or over the no-arbitrage maximum (S e^{-qT} call, K e^{-rT} put)
    BAD_INPUT = 3  # non-finite input, S or K <= 0, T <= 0, or a negative price
    NO_CONVERGENCE = 4  # the time value is too small to resolve in float64


def _solve(price, S, K, T, r, q, is_call):
    """The solver on one block of contracts: (sigma, reason). gpu.py mirrors it in CUDA."""
    bad = ~(
        np.isfinite(price)
        & np.isfinite(S)
        & np.isfinite(K)
        & np.isfinite(T)
        & np.isfinite(r)
        & np.isfinite(q)
        & (S > 0)
        & (K > 0)
        & (T > 0)
        & (price >= 0)
    )
    w = np.where(is_call, 1.0, -1.0)
    fwd = S * np.exp((r - q) * T)
    undisc = price * np.exp(r * T)
    intrinsic = np.maximum(w * (fwd - K), 0.0)
    cap = np.where(is_call, fwd, K)
    time_value = undisc - intrinsic
    x = -np.abs(np.log(fwd / K))
    beta = time_value / np.sqrt(fwd * K)
    b_max = np.exp(0.5 * x)
    below = ~bad & (time_value <= 0)
    above = ~bad & ~below & ((undisc >= cap) | (beta >= b_max))
    invalid = bad | below | above
    # Park invalid lanes on a harmless problem so no warnings or NaNs leak into the steps.
    x = np.where(invalid, -1.0, x)
    beta = np.where(invalid, 0.1, beta)
    b_max = np.where(invalid, math.exp(-0.5), b_max)

    s_c = np.maximum(np.sqrt(-2.0 * x), 1e-8)
    h_c = x / s_c
    b_c = np.exp(0.5 * x) * ndtr(h_c + 0.5 * s_c) - np.exp(-0.5 * x) * ndtr(h_c - 0.5 * s_c)
    high = beta >= b_c
    log_beta = np.log(beta)
    neg_log = -log_beta
    # Low side: b ~ exp(-x^2/(2 s^2) - s^2/8) solved for s, and b <= s/sqrt(2 pi): both bound
    # the root from below, where Newton-type steps on the concave ln b approach monotonically.
    u = 4.0 * (neg_log - np.sqrt(np.maximum(neg_log * neg_log - 0.25 * x * x, 0.0)))
    low_guess = np.minimum(np.maximum(np.sqrt(u), _SQRT_2PI * beta), s_c)
    # High side: b_max - b ~ 2 cosh(x/2) N(-s/2).
    high_arg = np.clip((b_max - beta) / (2.0 * np.cosh(0.5 * x)), 1e-300, 0.5)
    high_guess = np.maximum(-2.0 * ndtri(high_arg), s_c)
    s = np.where(high, high_guess, low_guess)

    residual = np.zeros_like(s)
    for _ in range(STEPS):
        h = x / s
        t = 0.5 * s
        b = np.exp(0.5 * x) * ndtr(h + t) - np.exp(-0.5 * x) * ndtr(h - t)
        vega = np.exp(-0.5 * (h * h + t * t)) / _SQRT_2PI
        curv = x * x / (s * s * s) - 0.25 * s  # b'' / b'
        dlog = vega / b
        f = np.where(high, b - beta, np.log(b) - log_beta)
        f1 = np.where(high, vega, dlog)
        f2 = np.where(high, vega * curv, dlog * (curv - dlog))
        newton = -f / f1
        step = newton / np.maximum(1.0 + 0.5 * newton * f2 / f1, 0.5)
        residual = np.where(high, f / beta, f)
        s = np.where(high, np.maximum(s + step, s_c), np.clip(s + step, 0.5 * s, s_c))

    sigma = s / np.sqrt(T)
    unresolved = ~invalid & ~(np.isfinite(sigma) & (np.abs(residual) <= RESIDUAL_TOL))
    reason = np.zeros(sigma.shape, dtype=np.int8)
    reason = np.where(bad, int(IVReason.BAD_INPUT), reason)
    reason = np.where(below, int(IVReason.BELOW_INTRINSIC), reason)
    reason = np.where(above, int(IVReason.ABOVE_MAX), reason)
    reason = np.where(unresolved, int(IVReason.NO_CONVERGENCE), reason).astype(np.int8)
    sigma = np.where(reason == int(IVReason.OK), sigma, np.nan)
    return sigma, reason


def _block(ins: Sequence, outs: Sequence[np.ndarray]) -> None:
    with np.errstate(all="ignore"):  # thread-local: set in the worker, not the caller
        sigma, reason = _solve(*ins)
    outs[0][...] = sigma
    outs[1][...] = reason


def implied_vol(price, S, K, T, r, q, is_call, *, return_reason: bool = False):
    """Black-Scholes-Merton implied volatility (annual) of European option prices.

    Arguments broadcast like :func:`engine.options.bsm.bs_price`. Where no volatility
    reproduces the price the result is NaN; with ``return_reason=True`` the call returns
    ``(sigma, reason)`` where ``reason`` holds :class:`IVReason` codes as int8.
    """
    xp = array_module(price, S, K, T, r, q, is_call)
    if xp is not np:
        from engine.options.gpu import implied_vol_gpu

        sigma, reason = implied_vol_gpu(price, S, K, T, r, q, is_call)
    else:
        shape, flat = broadcast_inputs(price, S, K, T, r, q, is_call)
        size = math.prod(shape)
        kernels = cpu_kernels()
        if kernels is None:
            sigma, reason = np.empty(size), np.empty(size)
            run_blocks(_block, flat, [sigma, reason])
        else:
            sigma, reason = np.empty(size), np.empty(size, dtype=np.int8)
            ins, steps = kernels.strided_inputs(flat)
            fill = partial(kernels.iv_range, ins, steps, sigma, reason)
            run_ranges(fill, size, kernels.IV_PARALLEL_FROM)
        sigma = sigma.reshape(shape)
        reason = reason.astype(np.int8, copy=False).reshape(shape)
    return (sigma, reason) if return_reason else sigma
