"""Raw SVI smiles (Gatheral 2004), fitted per expiry from quoted implied vols.

Total implied variance ``w = sigma_iv**2 * T`` as a function of log-moneyness
``k = ln(K / F)`` is

    w(k) = a + b * (rho * (k - m) + sqrt((k - m)**2 + sigma**2))

with ``b >= 0``, ``|rho| < 1``, ``sigma > 0``. The fit keeps the smile's lowest
total variance ``a + b * sigma * sqrt(1 - rho**2)`` non-negative (it fits that
minimum instead of ``a``, so a box bound enforces it) and penalises wings
steeper than Roger Lee's moment bound ``b * (1 + |rho|) <= 2``: the two
conditions that keep a single smile free of the obvious arbitrage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from engine.core.errors import InputError

MIN_QUOTES = 5  # five parameters need at least five points
LEE_SLOPE = 2.0
_RHO_LIMIT = 0.999
_PENALTY = 10.0


@dataclass(slots=True, frozen=True)
class SVIParams:
    """Raw SVI parameters of one expiry's total-variance smile."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def total_variance(self, k: ArrayLike) -> NDArray[np.float64]:
        """``w(k)`` at log-moneyness ``k`` (array-like)."""
        x = np.asarray(k, dtype=np.float64) - self.m
        return self.a + self.b * (self.rho * x + np.sqrt(x * x + self.sigma * self.sigma))

    def implied_vol(self, k: ArrayLike, t: float) -> NDArray[np.float64]:
        """Annual implied vol at log-moneyness ``k`` for ``t`` years to expiry."""
        return np.sqrt(np.maximum(self.total_variance(k), 0.0) / t)

    @property
    def min_total_variance(self) -> float:
        return self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho * self.rho)


@dataclass(slots=True, frozen=True)
class SVIFit:
    """A fitted smile: parameters, fitted vols at the quoted points, and the fit's RMSE in vol."""

    params: SVIParams
    t: float
    k: NDArray[np.float64]
    market_vol: NDArray[np.float64]
    fitted_vol: NDArray[np.float64]
    rmse: float
    converged: bool


def fit_svi(
    k: ArrayLike,
    w: ArrayLike,
    t: float,
    *,
    weights: ArrayLike | None = None,
) -> SVIFit:
    """Fit raw SVI to total implied variances ``w`` at log-moneyness ``k`` for one expiry.

    ``t`` is the expiry in years (vols are ``sqrt(w / t)``); ``weights`` (for
    example vega or inverse spread) scale the residuals. Non-finite points are
    dropped. The fit is a bounded ``scipy.optimize.least_squares`` (trust region
    reflective) from a few starting smiles; the best one wins. ``InputError`` if
    fewer than five usable quotes remain or ``t`` is not positive.
    """
    if not t > 0:
        raise InputError(f"an SVI fit needs a positive time to expiry, not {t}.")
    k_arr = np.asarray(k, dtype=np.float64).ravel()
    w_arr = np.asarray(w, dtype=np.float64).ravel()
    if k_arr.shape != w_arr.shape:
        raise InputError("an SVI fit needs as many total variances as log-moneyness points.")
    wt = (
        np.ones_like(k_arr)
        if weights is None
        else np.broadcast_to(np.asarray(weights, np.float64), k_arr.shape)
    )
    keep = np.isfinite(k_arr) & np.isfinite(w_arr) & np.isfinite(wt) & (w_arr > 0) & (wt > 0)
    k_arr, w_arr, wt = k_arr[keep], w_arr[keep], wt[keep]
    if k_arr.size < MIN_QUOTES:
        raise InputError(f"an SVI fit needs at least {MIN_QUOTES} quotes, found {k_arr.size}.")
    wt = wt / wt.mean()
    scale = float(w_arr.mean())

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        params = _from_vector(x)
        fit = (params.total_variance(k_arr) - w_arr) / scale * wt
        excess = params.b * (1.0 + abs(params.rho)) - LEE_SLOPE
        return np.append(fit, _PENALTY * max(excess, 0.0))

    def jacobian(x: NDArray[np.float64]) -> NDArray[np.float64]:
        b, rho, m, sigma = (float(value) for value in x[1:])
        c = math.sqrt(1.0 - rho * rho)
        d = k_arr - m
        root = np.sqrt(d * d + sigma * sigma)
        rows = np.empty((k_arr.size + 1, 5))
        rows[:-1, 0] = 1.0
        rows[:-1, 1] = rho * d + root - sigma * c
        rows[:-1, 2] = b * (d + sigma * rho / c)
        rows[:-1, 3] = -b * (rho + d / root)
        rows[:-1, 4] = b * (sigma / root - c)
        rows[:-1] *= (wt / scale)[:, None]
        rows[-1] = 0.0
        if b * (1.0 + abs(rho)) > LEE_SLOPE:
            rows[-1, 1] = _PENALTY * (1.0 + abs(rho))
            rows[-1, 2] = _PENALTY * b * math.copysign(1.0, rho)
        return rows

    k_span = float(k_arr.max() - k_arr.min()) or 1.0
    # The smile's vertex m stays among the quotes and its rounding sigma within their span:
    # outside them the data cannot pin either down and the solver only crawls along a ridge.
    lower = np.array([0.0, 0.0, -_RHO_LIMIT, k_arr.min(), 1e-4])
    upper = np.array([w_arr.max(), LEE_SLOPE, _RHO_LIMIT, k_arr.max(), k_span])
    best = None
    for start in _starts(k_arr, w_arr, lower, upper):
        result = least_squares(
            residuals, start, jac=jacobian, bounds=(lower, upper), method="trf", x_scale="jac"
        )
        if best is None or result.cost < best.cost:
            best = result
    params = _from_vector(best.x)
    market_vol = np.sqrt(w_arr / t)
    fitted_vol = params.implied_vol(k_arr, t)
    rmse = float(np.sqrt(np.mean((fitted_vol - market_vol) ** 2)))
    return SVIFit(params, t, k_arr, market_vol, fitted_vol, rmse, bool(best.success))


def _from_vector(x: NDArray[np.float64]) -> SVIParams:
    """The fit's vector is (minimum variance, b, rho, m, sigma); raw ``a`` follows from it."""
    v, b, rho, m, sigma = (float(value) for value in x)
    return SVIParams(a=v - b * sigma * math.sqrt(1.0 - rho * rho), b=b, rho=rho, m=m, sigma=sigma)


def _starts(
    k: NDArray[np.float64],
    w: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
) -> list[NDArray[np.float64]]:
    """Starting smiles: centred at the variance minimum, with a few skews and curvatures."""
    centre = float(k[np.argmin(w)])
    v0 = float(w.min()) * 0.9
    left, right = _wing_slope(k, w, k < centre), _wing_slope(k, w, k > centre)
    b0 = min(max((right - left) / 2.0, 0.01), LEE_SLOPE * 0.5)
    rho0 = float(np.clip((right + left) / (2.0 * b0), -0.9, 0.9))
    starts = []
    for rho in (rho0, -0.5, 0.0):
        for sigma in (0.05, 0.2):
            x = np.array([v0, b0, rho, centre, sigma * float(upper[4]) / 2.0])
            starts.append(np.clip(x, lower + 1e-12, upper - 1e-12))
    return starts


def _wing_slope(k: NDArray[np.float64], w: NDArray[np.float64], side: NDArray[np.bool_]) -> float:
    if side.sum() < 2:
        return 0.0
    return float(np.polyfit(k[side], w[side], 1)[0])
