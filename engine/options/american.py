"""American equity options: a vectorized Leisen-Reimer binomial tree.

Leisen-Reimer places the tree's probabilities with the Peizer-Pratt inversion of d1 and d2, so
the European limit is hit at odd step counts with second-order convergence and none of CRR's
odd/even oscillation; the early-exercise premium then converges smoothly as steps grow. The
tree is rolled back for many options at once (a block of options times the nodes of one time
step per NumPy operation). Conventions as in :mod:`engine.options.bsm`; CuPy inputs are
brought to the host, since trees are a CPU job here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.core.errors import InputError
from engine.options.backend import broadcast_inputs, run_blocks

DEFAULT_STEPS = 201


def _peizer_pratt(z: np.ndarray, n: int) -> np.ndarray:
    """Method-2 Peizer-Pratt inversion: the binomial probability matching N(z) on n steps."""
    a = z / (n + 1.0 / 3.0 + 0.1 / (n + 1.0))
    return 0.5 + np.copysign(0.5, z) * np.sqrt(1.0 - np.exp(-a * a * (n + 1.0 / 6.0)))


def _tree_block(steps: int):
    def block(ins: Sequence, outs: Sequence[np.ndarray]) -> None:
        n = outs[0].size
        S, K, T, r, q, sigma, is_call = (np.broadcast_to(a, (n,)) for a in ins)
        with np.errstate(all="ignore"):
            valid = (S > 0) & (K > 0) & (T > 0) & (sigma > 0)
            S_, K_, T_, s_ = (np.where(valid, a, 1.0) for a in (S, K, T, sigma))
            w = np.where(is_call, 1.0, -1.0)[:, None]
            sd = s_ * np.sqrt(T_)
            d1 = (np.log(S_ / K_) + (r - q) * T_) / sd + 0.5 * sd
            d2 = d1 - sd
            p = _peizer_pratt(d2, steps)
            p_up = _peizer_pratt(d1, steps)
            dt = T_ / steps
            growth = np.exp((r - q) * dt)
            up = growth * p_up / p
            down = (growth - p * up) / (1.0 - p)
            disc = np.exp(-r * dt)[:, None]
            pu = (disc[:, 0] * p)[:, None]
            pd = (disc[:, 0] * (1.0 - p))[:, None]
            j = np.arange(steps + 1)
            spots = S_[:, None] * np.exp(
                j * np.log(up)[:, None] + (steps - j) * np.log(down)[:, None]
            )
            strikes = K_[:, None]
            values = np.maximum(w * (spots - strikes), 0.0)
            inv_down = (1.0 / down)[:, None]
            for i in range(steps - 1, -1, -1):
                spots = spots[:, : i + 1] * inv_down
                held = pu * values[:, 1 : i + 2] + pd * values[:, : i + 1]
                values = np.maximum(held, w * (spots - strikes))
            outs[0][...] = np.where(valid, values[:, 0], np.nan)

    return block


def american_price(S, K, T, r, q, sigma, is_call, steps: int = DEFAULT_STEPS):
    """Price American options on a Leisen-Reimer tree of ``steps`` steps (made odd).

    Arguments broadcast like :func:`engine.options.bsm.bs_price`; the result is a NumPy
    float64 array, NaN where S, K, T or sigma is not positive. Cost is O(steps^2) per option.
    """
    if steps < 1:
        raise InputError(f"american_price needs at least one step, not {steps}.")
    steps += 1 - steps % 2
    args = [
        a.get() if type(a).__module__.startswith("cupy") else a
        for a in (S, K, T, r, q, sigma, is_call)
    ]
    shape, flat = broadcast_inputs(*args)
    out = np.empty(math.prod(shape))
    run_blocks(_tree_block(steps), flat, [out])
    return out.reshape(shape)
