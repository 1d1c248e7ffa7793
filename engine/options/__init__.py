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
]
