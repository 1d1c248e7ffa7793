"""American prices on the Leisen-Reimer tree: bounds, the no-dividend call, convergence, QuantLib."""

from __future__ import annotations

import numpy as np
import pytest
import QuantLib as ql

from engine.core.errors import InputError
from engine.options import american_price, bs_price


def _grid(n: int = 200, seed: int = 5):
    rng = np.random.default_rng(seed)
    S = rng.uniform(50.0, 150.0, n)
    K = S * np.exp(rng.uniform(-0.4, 0.4, n))
    T = rng.uniform(0.02, 2.0, n)
    r = rng.uniform(0.0, 0.08, n)
    q = rng.uniform(0.0, 0.06, n)
    sigma = rng.uniform(0.1, 0.8, n)
    is_call = rng.random(n) < 0.5
    return S, K, T, r, q, sigma, is_call


def test_american_is_worth_at_least_european():
    args = _grid()
    american = american_price(*args, steps=101)
    european = bs_price(*args)
    # The tree's own discretization error (~1e-3 at 101 steps) bounds how far below it may dip.
    assert np.all(american >= european - 2e-3)


def test_american_is_worth_at_least_immediate_exercise():
    S, K, T, r, q, sigma, is_call = _grid()
    american = american_price(S, K, T, r, q, sigma, is_call, steps=101)
    exercise = np.maximum(np.where(is_call, S - K, K - S), 0.0)
    assert np.all(american >= exercise - 1e-12)


def test_american_put_carries_an_early_exercise_premium():
    american = american_price(100.0, 110.0, 1.0, 0.05, 0.0, 0.3, False)
    european = bs_price(100.0, 110.0, 1.0, 0.05, 0.0, 0.3, False)
    assert american - european > 0.9  # 15.61 vs 14.66


def test_american_call_without_dividends_equals_european():
    S, K, T, r, _, sigma, _ = _grid(50, seed=9)
    american = american_price(S, K, T, r, 0.0, sigma, True, steps=401)
    european = bs_price(S, K, T, r, 0.0, sigma, True)
    assert np.all(np.abs(american - european) <= 2e-5 * S)


def test_error_shrinks_as_steps_grow():
    args = (100.0, 110.0, 1.0, 0.05, 0.02, 0.3, False)
    reference = float(american_price(*args, steps=3001))
    errors = [abs(float(american_price(*args, steps=n)) - reference) for n in (25, 101, 401)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 2e-3


@pytest.mark.parametrize(
    "S,K,days,r,q,sigma,is_call",
    [
        (100.0, 110.0, 365, 0.05, 0.0, 0.3, False),
        (100.0, 90.0, 182, 0.03, 0.06, 0.25, True),
        (50.0, 60.0, 30, 0.02, 0.0, 0.5, False),
    ],
)
def test_matches_quantlib_leisen_reimer_engine(S, K, days, r, q, sigma, is_call):
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
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(kind, K), ql.AmericanExercise(today, today + days)
    )
    option.setPricingEngine(ql.BinomialVanillaEngine(process, "lr", 201))
    ours = float(american_price(S, K, days / 365.0, r, q, sigma, is_call, steps=201))
    assert ours == pytest.approx(option.NPV(), rel=1e-9)


def test_out_of_domain_inputs_give_nan():
    prices = american_price(
        np.array([100.0, -1.0]), 100.0, np.array([0.0, 1.0]), 0.0, 0.0, 0.2, False
    )
    assert np.isnan(prices).all()


def test_fewer_than_one_step_is_refused():
    with pytest.raises(InputError, match="step"):
        american_price(100.0, 100.0, 1.0, 0.0, 0.0, 0.2, False, steps=0)
