"""Black-Scholes-Merton prices and greeks with a continuous dividend yield, vectorized.

All arguments broadcast; T in years, r and q continuous annual rates, sigma annual, is_call
boolean. Results are float64 arrays (NumPy in, NumPy out; CuPy in, CuPy out through the fused
GPU kernel). On the CPU the fused numba kernels of :mod:`engine.options.cpu` run when numba
imports (and ``TICKDECK_NUMBA`` is not ``off``), else blocked NumPy expressions. Greeks: delta and gamma per unit of spot, theta per year of calendar time
(dV/dt = -dV/dT), vega per 1.00 of volatility, rho per 1.00 of the rate r.

Inputs outside the model's domain (S <= 0, K <= 0, T < 0, sigma < 0, or NaN) give NaN. At
T == 0 or sigma == 0 the price is the discounted forward intrinsic value, except exactly at
the money where the limit is undefined and the result is NaN; greeks there may be NaN or
infinite, so callers floor T (a minute, say) when they need them at expiry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy.special import ndtr

from engine.options.backend import (
    array_module,
    broadcast_inputs,
    cpu_kernels,
    run_blocks,
    run_ranges,
)

INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(slots=True, frozen=True)
class Greeks:
    """Price and first-order sensitivities, each an array of the broadcast shape."""

    price: Any
    delta: Any
    gamma: Any
    theta: Any
    vega: Any
    rho: Any


def _price_block(ins: Sequence, outs: Sequence[np.ndarray]) -> None:
    with np.errstate(all="ignore"):  # thread-local: set in the worker, not the caller
        _price_math(ins, outs)


def _price_math(ins: Sequence, outs: Sequence[np.ndarray]) -> None:
    S, K, T, r, q, sigma, is_call = ins
    (price,) = outs
    w = np.where(is_call, 1.0, -1.0)
    sd = sigma * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q) * T) / sd + 0.5 * sd
    d2 = d1 - sd
    fwd_s = S * np.exp(-q * T)
    disc_k = K * np.exp(-r * T)
    np.multiply(w, fwd_s * ndtr(w * d1) - disc_k * ndtr(w * d2), out=price)
    _mask_invalid(S, K, T, sigma, outs)


def _greeks_block(ins: Sequence, outs: Sequence[np.ndarray]) -> None:
    with np.errstate(all="ignore"):
        _greeks_math(ins, outs)


def _greeks_math(ins: Sequence, outs: Sequence[np.ndarray]) -> None:
    S, K, T, r, q, sigma, is_call = ins
    price, delta, gamma, theta, vega, rho = outs
    w = np.where(is_call, 1.0, -1.0)
    sqrt_t = np.sqrt(T)
    sd = sigma * sqrt_t
    d1 = (np.log(S / K) + (r - q) * T) / sd + 0.5 * sd
    d2 = d1 - sd
    dq = np.exp(-q * T)
    fwd_s = S * dq
    disc_k = K * np.exp(-r * T)
    n1 = ndtr(w * d1)
    n2 = ndtr(w * d2)
    wn1 = w * n1
    wkn2 = w * disc_k * n2
    pdf_s = fwd_s * INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)  # S e^{-qT} phi(d1)
    np.subtract(fwd_s * wn1, wkn2, out=price)
    np.multiply(dq, wn1, out=delta)
    np.divide(pdf_s, S * S * sd, out=gamma)
    np.multiply(pdf_s, sqrt_t, out=vega)
    np.subtract(q * fwd_s * wn1 - r * wkn2, 0.5 * pdf_s * sigma / sqrt_t, out=theta)
    np.multiply(T, wkn2, out=rho)
    _mask_invalid(S, K, T, sigma, outs)


def _mask_invalid(S, K, T, sigma, outs: Sequence[np.ndarray]) -> None:
    # NaN inputs already propagate; only the sign-invalid domain needs masking. Checking the
    # minima first skips building a mask in the common all-valid case.
    if np.min(S) > 0 and np.min(K) > 0 and np.min(T) >= 0 and np.min(sigma) >= 0:
        return
    bad = np.broadcast_to((S <= 0) | (K <= 0) | (T < 0) | (sigma < 0), outs[0].shape)
    for out in outs:
        out[bad] = np.nan


def _cpu(block, n_out: int, args: tuple) -> list[np.ndarray]:
    shape, flat = broadcast_inputs(*args)
    size = math.prod(shape)
    outs = [np.empty(size) for _ in range(n_out)]
    kernels = cpu_kernels()
    if kernels is None:
        run_blocks(block, flat, outs)
    else:
        ins, steps = kernels.strided_inputs(flat)
        fused = kernels.price_range if n_out == 1 else kernels.greeks_range
        run_ranges(partial(fused, ins, steps, outs), size, kernels.GREEKS_PARALLEL_FROM)
    return [o.reshape(shape) for o in outs]


def bs_price(S, K, T, r, q, sigma, is_call):
    """Black-Scholes-Merton price of European options (see the module docstring)."""
    xp = array_module(S, K, T, r, q, sigma, is_call)
    if xp is not np:
        from engine.options.gpu import bs_price_gpu

        return bs_price_gpu(S, K, T, r, q, sigma, is_call)
    (price,) = _cpu(_price_block, 1, (S, K, T, r, q, sigma, is_call))
    return price


def bs_greeks(S, K, T, r, q, sigma, is_call) -> Greeks:
    """Price, delta, gamma, theta (per year), vega and rho (per 1.00) in one pass."""
    xp = array_module(S, K, T, r, q, sigma, is_call)
    if xp is not np:
        from engine.options.gpu import bs_greeks_gpu

        return bs_greeks_gpu(S, K, T, r, q, sigma, is_call)
    return Greeks(*_cpu(_greeks_block, 6, (S, K, T, r, q, sigma, is_call)))
