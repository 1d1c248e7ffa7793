"""Options analytics: vectorized Black-Scholes-Merton prices, greeks, implied volatility and
American prices, on NumPy (CPU) or CuPy (GPU) arrays.

Every kernel takes broadcasting array-likes in float64 (T in years, r and q continuous annual
rates, sigma annual, is_call boolean) and follows its inputs: NumPy in, NumPy out; CuPy in,
CuPy out. ``backend().xp`` is the array module to allocate with so the kernels run on the GPU
when one is active (``TICKDECK_GPU=auto|on|off``). These are numerics, not ledger amounts:
convert to Decimal, on the tick grid, only at the order boundary.
"""

from engine.options.american import DEFAULT_STEPS, american_price
from engine.options.backend import Backend, GpuUnavailable, backend
from engine.options.bsm import Greeks, bs_greeks, bs_price
from engine.options.iv import IVReason, implied_vol

__all__ = [
    "DEFAULT_STEPS",
    "Backend",
    "GpuUnavailable",
    "Greeks",
    "IVReason",
    "american_price",
    "backend",
    "bs_greeks",
    "bs_price",
    "implied_vol",
    "warm_up",
]


def warm_up() -> None:
    """Compile (or load from numba's cache) every CPU kernel once, so no trader waits on it.

    ``make`` runs this after installing; the compiled code is cached next to the sources.
    """
    import numpy as np

    spot = np.full(4_096, 100.0)
    strike = np.linspace(50.0, 150.0, 4_096)
    for is_call in (True, False):
        price = bs_price(spot, strike, 0.25, 0.03, 0.01, 0.2, is_call)
        bs_greeks(spot, strike, 0.25, 0.03, 0.01, 0.2, is_call)
        implied_vol(price, spot, strike, 0.25, 0.03, 0.01, is_call, return_reason=True)
