"""Array-module selection for the options kernels: CuPy on a CUDA GPU, NumPy otherwise.

``TICKDECK_GPU`` chooses: ``auto`` (the default) uses CuPy when it imports and sees a CUDA
device, ``on`` insists on it and raises :class:`GpuUnavailable` when it cannot, ``off`` always
uses NumPy. The choice is made once per distinct setting and cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import numpy as np
from loguru import logger

from engine.core.errors import ConfigError, TickdeckError

ENV_VAR = "TICKDECK_GPU"
MODES = ("auto", "on", "off")
NUMBA_ENV_VAR = "TICKDECK_NUMBA"


class GpuUnavailable(TickdeckError):
    """``TICKDECK_GPU=on`` was asked for, but CuPy or a CUDA device is missing."""


@dataclass(slots=True, frozen=True)
class Backend:
    """The active array module and why it was chosen.

    ``name`` is ``"cupy"`` or ``"numpy"``; ``xp`` is the module itself, for allocating arrays
    that the kernels then process on the same device; ``reason`` is one sentence for logs and
    the status line; ``device`` names the GPU (empty on NumPy).
    """

    name: str
    xp: ModuleType
    reason: str
    device: str = ""

    @property
    def is_gpu(self) -> bool:
        """True when the kernels run on a CUDA device through CuPy."""
        return self.name == "cupy"


def _probe_cupy() -> tuple[ModuleType | None, str, str]:
    """Import CuPy and look for a device: (module or None, why not / device name)."""
    try:
        import cupy
    except ImportError as exc:
        return None, f"cupy is not installed ({exc.__class__.__name__})", ""
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError and driver errors differ across CuPy versions
        return None, f"cupy found no CUDA driver or device ({exc})", ""
    if count < 1:
        return None, "cupy found no CUDA device", ""
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return cupy, "", name


@cache
def _select(mode: str) -> Backend:
    chosen = _choose(mode)
    logger.info("options backend: {}", chosen.reason)
    return chosen


def _choose(mode: str) -> Backend:
    if mode not in MODES:
        raise ConfigError(ENV_VAR, f"must be one of {', '.join(MODES)}, not {mode!r}.")
    if mode == "off":
        return Backend("numpy", np, f"{ENV_VAR}=off selects NumPy on the CPU.")
    cupy, why_not, device = _probe_cupy()
    if cupy is None:
        if mode == "on":
            raise GpuUnavailable(f"{ENV_VAR}=on asks for the GPU, but {why_not}.")
        return Backend("numpy", np, f"NumPy on the CPU because {why_not}.")
    return Backend("cupy", cupy, f"CuPy on {device} ({ENV_VAR}={mode}).", device)


def backend() -> Backend:
    """Return the active backend, chosen from ``TICKDECK_GPU`` (``auto`` when unset).

    Raises:
        GpuUnavailable: ``TICKDECK_GPU=on`` and CuPy or a CUDA device is missing.
        ConfigError: ``TICKDECK_GPU`` holds something other than auto, on or off.
    """
    return _select(os.environ.get(ENV_VAR, "auto").strip().lower() or "auto")


def array_module(*arrays: object) -> ModuleType:
    """The module that owns the inputs: CuPy when any of them is a CuPy array, else NumPy.

    The kernels follow their inputs, so NumPy in gives NumPy out even on a GPU box; allocate
    with ``backend().xp`` to run on the GPU.
    """
    for a in arrays:
        module = type(a).__module__
        if module.startswith("cupy"):
            import cupy

            return cupy
    return np


# CPU execution. With numba installed the kernels are fused per-contract loops
# (engine/options/cpu.py) that release the GIL; run_ranges hands them a few large ranges on the
# thread pool. That matched numba's own parallel=True prange loops here (within the noise of a
# shared 2-core box) and needs no numba threading layer: workqueue aborts on concurrent calls
# from two threads, and GNU OpenMP does not survive a fork. Without numba, float64 ufunc loops (NumPy's
# and scipy.special's, ndtr included) run without the GIL too, so the pool works on cache-sized
# blocks that keep every temporary in cache and every core busy: about 2x the whole-array
# expression in tests/bench, and about 2x numexpr for the arithmetic around ndtr.

BLOCK = 8192  # elements per block: ~30 live float64 temporaries fit in a 2 MB L2
PARALLEL_FROM = 4 * BLOCK  # below this, threads cost more than they save


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_cpus(), thread_name_prefix="options")


@cache
def _cpus() -> int:
    return max(1, os.cpu_count() or 1)  # asked once: the call costs microseconds each time


def cpu_kernels() -> ModuleType | None:
    """The fused numba kernels (:mod:`engine.options.cpu`), or None for the NumPy blocks.

    None when numba does not import, or when ``TICKDECK_NUMBA=off`` asks for the NumPy path
    (read on every call, so tests can run both). The first call per process compiles the
    kernels, or loads them from numba's on-disk cache.
    """
    if os.environ.get(NUMBA_ENV_VAR, "auto").strip().lower() == "off":
        return None
    return _import_cpu_kernels()


@cache
def _import_cpu_kernels() -> ModuleType | None:
    try:
        from engine.options import cpu
    except ImportError as exc:
        logger.info("options CPU kernels: NumPy blocks because numba is missing ({})", exc)
        return None
    return cpu


def run_ranges(
    fill: Callable[[int, int], None], n: int, parallel_from: int = PARALLEL_FROM
) -> None:
    """Call ``fill(start, stop)`` over ``range(n)`` in a few ranges, on the pool from
    ``parallel_from`` contracts (pick it so one range is worth a thread hand-off, ~1 ms).

    For kernels that release the GIL and keep no temporaries (the numba ones): ranges of a
    quarter of an even share per core, so a core slowed by other work does not hold up the
    rest.
    """
    cpus = _cpus()
    if n < parallel_from or cpus == 1:
        fill(0, n)
        return
    size = -(-n // (4 * cpus))
    for _ in _pool().map(lambda start: fill(start, min(start + size, n)), range(0, n, size)):
        pass


def broadcast_inputs(
    *args: object,
) -> tuple[tuple[int, ...], list[np.ndarray | np.float64 | np.bool_]]:
    """Broadcast to a common shape; full-size inputs become flat arrays, size-1 ones scalars."""
    arrays = [np.asarray(a) for a in args]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    flat: list = []
    for a in arrays:
        if a.size == 1:
            flat.append(a.reshape(()).item() if a.dtype == bool else np.float64(a.reshape(())))
        elif a.shape == shape:
            flat.append(
                np.ascontiguousarray(a, dtype=bool if a.dtype == bool else np.float64).ravel()
            )
        else:
            dtype = bool if a.dtype == bool else np.float64
            flat.append(np.ascontiguousarray(np.broadcast_to(a, shape), dtype=dtype).ravel())
    return shape, flat


def run_blocks(
    kernel: Callable[[Sequence, Sequence[np.ndarray]], None],
    inputs: Sequence,
    outputs: Sequence[np.ndarray],
) -> None:
    """Call ``kernel(inputs_block, outputs_block)`` on each block, in parallel when large."""
    n = outputs[0].size

    def one(start: int) -> None:
        stop = min(start + BLOCK, n)
        ins = [x[start:stop] if isinstance(x, np.ndarray) else x for x in inputs]
        kernel(ins, [o[start:stop] for o in outputs])

    starts = range(0, n, BLOCK)
    if n < PARALLEL_FROM or _cpus() == 1:
        for start in starts:
            one(start)
    else:
        for _ in _pool().map(one, starts):
            pass
