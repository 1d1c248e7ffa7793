"""Raw SVI fits: recovering known parameters, noise, bounds, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.core.errors import InputError
from engine.options.svi import LEE_SLOPE, SVIParams, fit_svi

KNOWN = SVIParams(a=0.02, b=0.15, rho=-0.6, m=0.05, sigma=0.12)
T = 0.5


def test_total_variance_matches_the_formula_by_hand() -> None:
    # k = 0.05 = m: w = a + b * sigma = 0.02 + 0.15 * 0.12 = 0.038
    assert float(KNOWN.total_variance(0.05)) == pytest.approx(0.038, abs=1e-15)
    # k = m + 0.16: w = a + b * (rho * 0.16 + sqrt(0.16^2 + 0.12^2)) = 0.02 + 0.15 * (-0.096 + 0.2)
    assert float(KNOWN.total_variance(0.21)) == pytest.approx(0.0356, abs=1e-15)


def test_min_total_variance_is_a_plus_b_sigma_sqrt_one_minus_rho_squared() -> None:
    assert KNOWN.min_total_variance == pytest.approx(0.02 + 0.15 * 0.12 * 0.8, abs=1e-15)


def test_recovers_known_parameters_from_exact_quotes() -> None:
    k = np.linspace(-0.6, 0.4, 25)
    fit = fit_svi(k, KNOWN.total_variance(k), T)
    got = fit.params
    assert (got.a, got.b, got.rho, got.m, got.sigma) == pytest.approx(
        (0.02, 0.15, -0.6, 0.05, 0.12), abs=1e-6
    )
    assert fit.rmse < 1e-9
    assert fit.converged


def test_fitted_vols_track_noisy_quotes_within_the_noise() -> None:
    rng = np.random.default_rng(7)
    k = np.linspace(-0.5, 0.3, 40)
    vols = np.sqrt(KNOWN.total_variance(k) / T) + rng.normal(0.0, 0.002, k.size)
    fit = fit_svi(k, vols**2 * T, T)
    assert fit.rmse < 0.0025  # the noise is 0.2 vol points
    true_vols = np.sqrt(KNOWN.total_variance(k) / T)
    assert np.max(np.abs(fit.fitted_vol - true_vols)) < 0.003


def test_fit_respects_lee_wing_bound_and_non_negative_variance() -> None:
    k = np.linspace(-0.3, 0.3, 15)
    steep = SVIParams(a=0.0, b=3.0, rho=0.0, m=0.0, sigma=0.05).total_variance(k)
    fit = fit_svi(k, steep, 1.0).params
    assert fit.b * (1 + abs(fit.rho)) <= LEE_SLOPE + 1e-3
    assert fit.min_total_variance >= -1e-12


def test_drops_non_finite_quotes() -> None:
    k = np.linspace(-0.4, 0.4, 12)
    w = KNOWN.total_variance(k)
    w[3] = math.nan
    fit = fit_svi(k, w, T)
    assert fit.k.size == 11
    assert fit.rmse < 1e-8


def test_refuses_fewer_than_five_quotes() -> None:
    with pytest.raises(InputError, match="at least 5 quotes"):
        fit_svi([0.0, 0.1, 0.2, 0.3], [0.04, 0.04, 0.05, 0.06], T)


def test_refuses_a_non_positive_expiry() -> None:
    with pytest.raises(InputError, match="positive time"):
        fit_svi(np.linspace(-0.2, 0.2, 6), np.full(6, 0.04), 0.0)
