"""Parameter grids, and running many backtests serially or on a Dask cluster.

A grid is ``name=v1,v2,...`` terms; the runs are their cartesian product, in the order the
terms and values were given. Each run is a pure function of its spec (same data, same seed,
same result), so a sweep on Dask returns exactly what the serial loop does; the results come
back in grid order and are then ranked by the chosen metric.

Dask: ``scheduler=None`` starts a local cluster of worker processes for the sweep and closes it
after; ``scheduler="tcp://HOST:8786"`` uses a running cluster (its workers need tickdeck
installed and the data reachable at the same paths or store).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from loguru import logger

from engine.backtest.metrics import LOWER_IS_BETTER, METRIC_NAMES, Metrics
from engine.core.errors import InputError

S = TypeVar("S")
R = TypeVar("R")

MAX_RUNS = 10_000


def parse_grid(terms: Sequence[str]) -> list[dict[str, str]]:
    """``["fast=5,10", "slow=50"]`` -> ``[{"fast": "5", "slow": "50"}, {"fast": "10", ...}]``."""
    if not terms:
        raise InputError("a sweep needs a grid, e.g. --grid fast=5,10,20 slow=50,100")
    axes: dict[str, list[str]] = {}
    for term in terms:
        name, sep, values = term.partition("=")
        name = name.strip()
        choices = [v.strip() for v in values.split(",")]
        if not sep or not name or not all(choices):
            raise InputError(
                f"'{term}' is not a grid term; write name=value1,value2 (e.g. fast=5,10,20)"
            )
        if name in axes:
            raise InputError(f"the grid names '{name}' twice")
        axes[name] = choices
    runs = math.prod(len(v) for v in axes.values())
    if runs > MAX_RUNS:
        raise InputError(f"the grid has {runs:,} runs; the most a sweep takes is {MAX_RUNS:,}")
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def rank(results: Sequence[R], metrics: Callable[[R], Metrics], by: str) -> list[R]:
    """``results`` best first by metric ``by`` (runs where it is undefined go last)."""
    if by not in METRIC_NAMES:
        raise InputError(f"'{by}' is not a metric; choose one of {', '.join(METRIC_NAMES)}")
    lower = by in LOWER_IS_BETTER

    def key(result: R) -> tuple[bool, float]:
        value = getattr(metrics(result), by)
        if value is None:
            return (True, 0.0)
        return (False, value if lower else -value)

    return sorted(results, key=key)


def run_all(
    run: Callable[[S], R],
    specs: Sequence[S],
    *,
    dask: bool = True,
    scheduler: str | None = None,
    workers: int | None = None,
) -> list[R]:
    """``run(spec)`` for every spec, in order: serially, or on Dask (a local cluster unless a
    ``scheduler`` address is given). ``run`` must be importable (a module-level function)."""
    if not dask:
        return [run(spec) for spec in specs]
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not scheduler.startswith(("tcp://", "tls://", "inproc://")):
            raise InputError(f"'{scheduler}' is not a Dask scheduler address (tcp://HOST:8786)")
        try:
            with Client(scheduler, timeout="10s") as client:
                return _gather(client, run, specs)
        except OSError as error:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    count = workers or max(1, min(len(specs), os.cpu_count() or 1))
    logger.info("sweep: {} runs on a local Dask cluster of {} workers", len(specs), count)
    with (
        LocalCluster(
            n_workers=count,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,
    ):
        return _gather(client, run, specs)


def _gather(client, run: Callable[[S], R], specs: Sequence[S]) -> list[R]:
    futures = client.map(run, list(specs), pure=False)
    return client.gather(futures)


def params_text(params: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())
