"""``tickdeck backtest``: run a bot on history, sweep its parameters, walk it forward.

    tickdeck backtest --bot momentum --symbols AAPL,MSFT --start 2020-01-02 --end 2020-12-31
    tickdeck backtest sweep --bot momentum ... --grid fast=5,10,20 slow=50,100 [--metric sharpe]
    tickdeck backtest walk-forward --bot momentum ... --grid fast=5,10 --train-days 180 --test-days 60

Every mistake in the arguments is one sentence on stderr and exit status 2 (engine.cli).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.backtest.metrics import METRIC_NAMES, Metrics
from engine.backtest.montecarlo import bootstrap
from engine.backtest.plot import terminal_plot, write_html
from engine.backtest.runner import (
    TIMEFRAMES,
    BacktestResult,
    BacktestSpec,
    load_bars,
    run_backtest,
)
from engine.backtest.sweep import params_text, parse_grid, rank, run_all
from engine.backtest.walkforward import walk_forward
from engine.bots.settings import BOT_KINDS
from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.core.errors import InputError

ACTIONS = ("run", "sweep", "walk-forward")


def add_backtest_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="run a bot on history (sweep: a parameter grid; walk-forward: rolling re-tuning)",
    )
    p.add_argument("action", nargs="?", choices=ACTIONS, default="run", help="default: run")
    p.add_argument("--bot", required=True, choices=BOT_KINDS, help="the bot to test")
    p.add_argument("--symbols", required=True, metavar="A,B,...", help="symbols it trades")
    p.add_argument("--start", required=True, metavar="DATE", help="first day (YYYY-MM-DD)")
    p.add_argument("--end", required=True, metavar="DATE", help="last day (YYYY-MM-DD)")
    p.add_argument("--timeframe", choices=TIMEFRAMES, default="1Day", help="bar size")
    p.add_argument(
        "--params", nargs="+", default=[], metavar="K=V", help="bot parameters (fast=10 ...)"
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="bars from a file or Lean folder (default: the history store, else the bundled sample)",
    )
    p.add_argument("--cash", default="100000", help="starting cash (default 100000)")
    p.add_argument("--fee-per-share", default="0.005", help="commission per share")
    p.add_argument("--spread-bps", default="2", help="quoted spread in basis points")
    p.add_argument("--latency-ms", type=float, default=0.0, help="order latency at the venue")
    p.add_argument("--seed", type=int, default=1, help="seed (same seed, same trades)")
    p.add_argument("--out", metavar="DIR", default=".", help="where the HTML plot is saved")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--trades", type=int, default=20, help="trades listed (default 20)")
    p.add_argument(
        "--monte-carlo",
        type=int,
        default=0,
        metavar="RUNS",
        help="bootstrap the trades this many times (0: off)",
    )
    p.add_argument("--grid", nargs="+", default=[], metavar="K=V1,V2", help="sweep grid")
    p.add_argument("--metric", choices=METRIC_NAMES, default="sharpe", help="rank by")
    p.add_argument("--top", type=int, default=10, help="sweep rows shown")
    p.add_argument("--scheduler", metavar="ADDR", help="a Dask scheduler (tcp://HOST:8786)")
    p.add_argument("--serial", action="store_true", help="sweep in this process, not on Dask")
    p.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    p.add_argument("--train-days", type=int, default=180, help="walk-forward training window")
    p.add_argument("--test-days", type=int, default=60, help="walk-forward test window")


def spec_from_args(args: argparse.Namespace) -> BacktestSpec:
    params = []
    for term in args.params:
        key, sep, value = term.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"bot parameter '{term}' must be written key=value.")
        params.append((key.strip().lower(), value.strip()))
    return BacktestSpec(
        bot=args.bot,
        symbols=tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()),
        start=_day(args.start, "--start"),
        end=_day(args.end, "--end"),
        timeframe=args.timeframe,
        params=tuple(params),
        data=args.data,
        cash=_number(args.cash, "--cash"),
        fee_per_share=_number(args.fee_per_share, "--fee-per-share"),
        spread_bps=_number(args.spread_bps, "--spread-bps"),
        latency_ms=args.latency_ms,
        seed=args.seed,
    )


def run_backtest_command(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if args.action == "run":
        return _run(spec, args)
    grid = parse_grid(args.grid)
    if args.action == "sweep":
        return _sweep(spec, grid, args)
    return _walk(spec, grid, args)


def _run(spec: BacktestSpec, args: argparse.Namespace) -> int:
    result = run_backtest(spec)
    print(_header(spec, result))
    print(metrics_text(result.metrics))
    print()
    print(trades_text(result, args.trades))
    print()
    print(terminal_plot(result.curve))
    name = f"tickdeck-backtest-{spec.bot}-{spec.start:%Y%m%d}-{spec.end:%Y%m%d}.html"
    path = write_html(result.curve, Path(args.out) / name, title=_title(spec))
    print(f"\nplot saved to {path}")
    report = {"spec": _spec_json(spec), "metrics": result.metrics.as_dict()}
    if args.monte_carlo:
        mc = bootstrap(result.trips, spec.cash, runs=args.monte_carlo, seed=spec.seed)
        print()
        print(
            f"Monte Carlo ({mc.runs:,} resamples of {mc.trades} trades): "
            f"P(loss) {mc.probability_of_loss:.1%}"
        )
        for label, dist in (("return", mc.total_return), ("max drawdown", mc.max_drawdown)):
            cells = "  ".join(f"p{p} {v:+.2%}" for p, v in dist.percentiles)
            print(f"  {label:<13} {cells}")
        report["monte_carlo"] = {
            "runs": mc.runs,
            "probability_of_loss": mc.probability_of_loss,
            "total_return": dict(mc.total_return.percentiles),
            "max_drawdown": dict(mc.max_drawdown.percentiles),
        }
    _write_json(args.json, report | {"trades": [_trip_json(t) for t in result.trips]})
    return 0


def _sweep(spec: BacktestSpec, grid: list[dict[str, str]], args: argparse.Namespace) -> int:
    bars, _ = load_bars(spec)
    specs = [spec.with_params(point) for point in grid]
    print(f"sweep: {len(specs)} runs of {spec.bot} on {', '.join(spec.symbols)}", flush=True)
    results = run_all(
        _run_on(bars),
        specs,
        dask=not args.serial,
        scheduler=args.scheduler,
        workers=args.workers,
    )
    ranked = rank(results, lambda r: r.metrics, args.metric)
    print(f"{'params':<32} {'return':>9} {'sharpe':>7} {'max dd':>8} {'closed':>6}")
    for result in ranked[: args.top]:
        m = result.metrics
        print(
            f"{params_text(dict(result.spec.params)):<32} {m.total_return:>+9.2%} "
            f"{_maybe(m.sharpe):>7} {m.max_drawdown:>8.2%} {m.trades:>6}"
        )
    _write_json(
        args.json,
        {"runs": [{"params": dict(r.spec.params)} | r.metrics.as_dict() for r in ranked]},
    )
    return 0


class _run_on:
    """``run_backtest`` on bars loaded once, for every run of a sweep."""

    def __init__(self, bars) -> None:
        self.bars = bars

    def __call__(self, spec: BacktestSpec) -> BacktestResult:
        return run_backtest(spec, self.bars)


def _walk(spec: BacktestSpec, grid: list[dict[str, str]], args: argparse.Namespace) -> int:
    windows = walk_forward(
        spec,
        grid,
        train_days=args.train_days,
        test_days=args.test_days,
        metric=args.metric,
        dask=False,
    )
    print(f"walk-forward: {len(windows)} windows, choosing by {args.metric}")
    print(f"{'test window':<24} {'chosen':<28} {'train':>9} {'test':>9}")
    for w in windows:
        test = f"{w.test.total_return:+.2%}" if w.test is not None else "no bars"
        print(
            f"{w.window.test_start} .. {w.window.test_end}  {params_text(w.params):<28} "
            f"{w.train.total_return:>+9.2%} {test:>9}"
        )
    _write_json(
        args.json,
        {
            "windows": [
                {
                    "test_start": str(w.window.test_start),
                    "test_end": str(w.window.test_end),
                    "params": w.params,
                    "train": w.train.as_dict(),
                    "test": w.test.as_dict() if w.test else None,
                }
                for w in windows
            ]
        },
    )
    return 0


# -- text ------------------------------------------------------------------------------------


def _title(spec: BacktestSpec) -> str:
    params = f" ({params_text(dict(spec.params))})" if spec.params else ""
    return f"{spec.bot}{params} on {', '.join(spec.symbols)}, {spec.start} to {spec.end}"


def _header(spec: BacktestSpec, result: BacktestResult) -> str:
    where = "; ".join(result.sources) or "given bars"
    return f"{_title(spec)} · {result.bars:,} {spec.timeframe} bars from {where}"


def metrics_text(m: Metrics) -> str:
    days = m.max_drawdown_duration_ns / 86_400e9
    rows = [
        ("P&L", f"{m.pnl:,.2f}  ({m.start_equity:,.2f} -> {m.end_equity:,.2f})"),
        ("total return", f"{m.total_return:+.2%}"),
        ("annualized", f"{m.annualized_return:+.2%}"),
        ("volatility", f"{m.volatility:.2%}"),
        ("Sharpe / Sortino", f"{_maybe(m.sharpe)} / {_maybe(m.sortino)}"),
        ("max drawdown", f"{m.max_drawdown:.2%} over {days:.0f} days"),
        ("closed trades / win", f"{m.trades} / {_pct(m.win_rate)}"),
        ("profit factor", _maybe(m.profit_factor)),
        ("turnover / exposure", f"{m.turnover:.2f}x / {m.exposure:.0%}"),
        ("fees", f"{m.fees:,.2f}"),
    ]
    return "\n".join(f"  {label:<20} {value}" for label, value in rows)


def trades_text(result: BacktestResult, limit: int) -> str:
    trips = result.trips
    lines = [f"trades ({len(trips)}):"]
    for t in trips[:limit]:
        opened = ns_to_datetime(t.entry_ns, NEW_YORK).strftime("%Y-%m-%d %H:%M")
        closed = ns_to_datetime(t.exit_ns, NEW_YORK).strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"  {t.symbol:<6} {t.qty:>+8} {opened} @ {t.entry_price:.2f} -> {closed} @ "
            f"{t.exit_price:.2f}  {t.pnl:>+12,.2f}"
        )
    if len(trips) > limit:
        lines.append(f"  ... {len(trips) - limit} more (--trades N, or --json FILE)")
    return "\n".join(lines)


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} '{text}' is not a date (YYYY-MM-DD)") from None


def _number(text: str, flag: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{flag} '{text}' is not a number") from None
    if not value.is_finite() or value < 0:
        raise InputError(f"{flag} must be a number, zero or more, not '{text}'")
    return value


def _spec_json(spec: BacktestSpec) -> dict[str, object]:
    return {
        "bot": spec.bot,
        "symbols": list(spec.symbols),
        "start": str(spec.start),
        "end": str(spec.end),
        "timeframe": spec.timeframe,
        "params": dict(spec.params),
        "cash": str(spec.cash),
        "seed": spec.seed,
    }


def _trip_json(t) -> dict[str, str | int]:
    return {
        "symbol": t.symbol,
        "qty": str(t.qty),
        "entry_ns": t.entry_ns,
        "exit_ns": t.exit_ns,
        "entry_price": str(t.entry_price),
        "exit_price": str(t.exit_price),
        "pnl": str(t.pnl),
        "fees": str(t.fees),
    }


def _write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {path}", file=sys.stderr)
