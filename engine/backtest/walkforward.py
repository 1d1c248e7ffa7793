"""Walk-forward optimization: choose parameters on one window, judge them on the next.

The span from the spec's start to its end is cut into rolling windows of ``train_days``
followed by ``test_days`` (calendar days), stepping by ``test_days``, so the test windows
tile the span after the first training window and never overlap it (a last test window
shorter than half of ``test_days`` is left out). In each window every
grid point is backtested on the training days, the best by ``metric`` is kept, and that one
is run on the test days: the test results are what the rule would have earned had it been
re-tuned as it went, with no look at the days it is judged on. Each run starts flat and
warms its indicators up inside its own window, as a bot started that day would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from engine.backtest.metrics import Metrics
from engine.backtest.runner import BacktestResult, BacktestSpec, run_backtest
from engine.backtest.sweep import rank, run_all
from engine.core.errors import InputError


@dataclass(slots=True, frozen=True)
class Window:
    train_start: date
    train_end: date
    test_start: date
    test_end: date


@dataclass(slots=True, frozen=True)
class WindowResult:
    window: Window
    params: dict[str, str]  # the best on the training days
    train: Metrics
    test: Metrics | None  # None when the test days had no bars


def windows(start: date, end: date, train_days: int, test_days: int) -> list[Window]:
    """Rolling train/test windows over ``start``..``end``; ``InputError`` if none fits."""
    if train_days < 1 or test_days < 1:
        raise InputError("train and test windows must be at least one day each.")
    out = []
    train_start = start
    while True:
        train_end = train_start + timedelta(days=train_days - 1)
        test_start = train_end + timedelta(days=1)
        if test_start > end:
            break
        test_end = min(end, test_start + timedelta(days=test_days - 1))
        if (test_end - test_start).days + 1 < max(1, test_days // 2):
            break  # a stub of a test window at the end would judge the rule on a day or two
        out.append(Window(train_start, train_end, test_start, test_end))
        train_start += timedelta(days=test_days)
    if not out:
        raise InputError(
            f"{start} to {end} is too short for a {train_days}-day training window and a "
            f"{test_days}-day test window."
        )
    return out


def walk_forward(
    spec: BacktestSpec,
    grid: Sequence[dict[str, str]],
    *,
    train_days: int,
    test_days: int,
    metric: str = "sharpe",
    runner: Callable[[BacktestSpec], BacktestResult] = run_backtest,
    dask: bool = False,
    scheduler: str | None = None,
) -> list[WindowResult]:
    """Optimize on each training window, then test the winner on the window after it."""
    results = []
    for window in windows(spec.start, spec.end, train_days, test_days):
        train_spec = replace(spec, start=window.train_start, end=window.train_end)
        trials = run_all(
            runner,
            [train_spec.with_params(point) for point in grid],
            dask=dask,
            scheduler=scheduler,
        )
        best = rank(trials, lambda r: r.metrics, metric)[0]
        params = dict(best.spec.params)
        test_spec = replace(best.spec, start=window.test_start, end=window.test_end)
        try:
            test = runner(test_spec).metrics
        except InputError:
            test = None
        results.append(WindowResult(window, params, best.metrics, test))
    return results
