"""One backtest: a bot on history, through the same engine that trades live.

The run builds an ``Engine`` on a ``SimClock`` whose market is the bars (``BarFeed``): the sim
venue (fees, latency, the spread, walking levels and partial fills), pre-trade risk, the OMS
and journal, and the bot service with the bot in ``auto`` mode, exactly as ``tickdeck engine
--bot`` runs it. The engine keeps its journal and paper account in a temporary folder, so a
backtest never touches the trader's books. Bars come from ``--data`` (a Lean zip or folder, a
Pooksoft CSV, a Parquet file) or else from the history store, falling back to the bundled
sample for daily bars.

A run is a pure function of its ``BacktestSpec``: the same spec gives the same trades, which
is what lets a sweep farm runs out to Dask workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from loguru import logger

from engine.backtest.feed import BarFeed, bar_end
from engine.backtest.metrics import EquityPoint, Metrics, RoundTrip, compute_metrics
from engine.bots import bot_class
from engine.bots.api import Bot, BotMode
from engine.config import load_settings
from engine.core.bus import Topic
from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.core.errors import InputError
from engine.core.models import Bar, Fill
from engine.core.prices import ZERO, contract_multiplier
from engine.node import Engine
from engine.portfolio import Portfolio

TIMEFRAMES = ("1Min", "5Min", "1Hour", "1Day")
PERIODS_PER_YEAR = {"1Min": 252 * 390, "5Min": 252 * 78, "1Hour": 252 * 6.5, "1Day": 252}


@dataclass(slots=True, frozen=True)
class BacktestSpec:
    """Everything a run depends on. ``params`` are the bot's, as text (``fast=5``)."""

    bot: str
    symbols: tuple[str, ...]
    start: date
    end: date
    timeframe: str = "1Day"
    params: tuple[tuple[str, str], ...] = ()
    data: str | None = None
    cash: Decimal = Decimal(100_000)
    fee_per_share: Decimal = Decimal("0.005")
    fee_per_order: Decimal = ZERO
    latency_ms: float = 0.0
    spread_bps: Decimal = Decimal(2)
    seed: int = 1
    risk: tuple[tuple[str, str], ...] = ()  # [risk] overrides, e.g. ("collar_soft_pct", "none")

    def __post_init__(self) -> None:
        if not self.symbols:
            raise InputError("a backtest needs at least one symbol (--symbols AAPL,MSFT).")
        if self.start > self.end:
            raise InputError(f"the start {self.start} is after the end {self.end}.")
        if self.timeframe not in TIMEFRAMES:
            raise InputError(
                f"'{self.timeframe}' is not a timeframe; use one of {', '.join(TIMEFRAMES)}."
            )
        if self.cash <= ZERO:
            raise InputError(f"the starting cash must be positive, not {self.cash}.")

    def with_params(self, params: Mapping[str, str]) -> BacktestSpec:
        merged = dict(self.params) | dict(params)
        return replace(self, params=tuple(merged.items()))

    @property
    def bot_params(self) -> dict[str, str]:
        """The bot's parameters, its symbols defaulting to the spec's."""
        return {"symbols": "+".join(self.symbols)} | dict(self.params)


@dataclass(slots=True, frozen=True)
class BacktestResult:
    spec: BacktestSpec
    metrics: Metrics
    trips: tuple[RoundTrip, ...]
    fills: tuple[Fill, ...]
    curve: tuple[EquityPoint, ...]
    bars: int
    sources: tuple[str, ...] = field(default=())  # where the bars came from
    rejections: tuple[str, ...] = field(default=())


def run_backtest(
    spec: BacktestSpec,
    bars: Mapping[str, Sequence[Bar]] | None = None,
    *,
    bot: type[Bot] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Run ``spec`` (on ``bars`` when given, else those ``load_bars`` finds for it), with the
    built-in bot ``spec.bot`` names, or the class ``bot`` (your own). ``progress(done, total)``
    is called with the bars replayed so far, about a hundred times over the run."""
    with _quiet():
        return _run(spec, bars, bot, progress)


def _run(
    spec: BacktestSpec,
    bars: Mapping[str, Sequence[Bar]] | None,
    bot: type[Bot] | None,
    progress: Callable[[int, int], None] | None,
) -> BacktestResult:
    cls = bot if bot is not None else bot_class(spec.bot)
    sources: tuple[str, ...] = ()
    if bars is None:
        bars, sources = load_bars(spec)
    feed = BarFeed(bars, spread_bps=spec.spread_bps)
    if not feed.symbols:
        raise InputError(
            f"there are no {spec.timeframe} bars for {', '.join(spec.symbols)} from "
            f"{spec.start} to {spec.end}."
        )
    with tempfile.TemporaryDirectory(prefix="tickdeck-backtest-") as folder:
        engine = Engine(
            _settings(spec),
            start_ns=feed.start_ns,
            data_dir=Path(folder),
            housekeeping=False,
            feed=feed,
        )
        engine.bots.add_bot(spec.bot, cls, spec.bot_params, BotMode.AUTO)
        engine.bots.persist = False
        if progress is not None:
            engine.bus.subscribe(Topic.BAR, _Progress(progress, feed.bar_count))
        asyncio.run(_drive(engine))
        fills = tuple(engine.oms.fills())
        rejections = tuple(d.reason for d in engine.oms.rejections())
    curve = [EquityPoint(feed.start_ns, spec.cash, ZERO)]  # before the first bar: all cash
    curve += equity_curve(feed.bars, fills, spec.cash)
    trips = round_trips(fills)
    traded = sum((f.qty * f.price * contract_multiplier(f.symbol) for f in fills), ZERO)
    metrics = compute_metrics(
        curve,
        trips,
        periods_per_year=PERIODS_PER_YEAR[spec.timeframe],
        traded_notional=traded,
        fees=sum((f.fee for f in fills), ZERO),
    )
    return BacktestResult(
        spec, metrics, tuple(trips), fills, tuple(curve), feed.bar_count, sources, rejections
    )


def _settings(spec: BacktestSpec):
    return load_settings(
        env={},
        cli={
            "mode": "replay",
            "speed": 0,
            "seed": spec.seed,
            "symbols": ",".join(spec.symbols),
            "venue.starting_cash": spec.cash,
            "venue.fee_per_share": spec.fee_per_share,
            "venue.fee_per_order": spec.fee_per_order,
            "venue.latency_ms": spec.latency_ms,
            # The bot's own budget is the account: a backtest measures the rule, not a cap.
            "bots.max_notional": "none",
            "bots.max_positions": "none",
            "bots.max_daily_loss": "none",
            "s3.backfill_days": 0,
        }
        | {f"risk.{key}": value for key, value in spec.risk},
    )


async def _drive(engine: Engine) -> None:
    await engine.start()
    try:
        await engine.driver.run()
    finally:
        await engine.stop(cancel_open=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The engine's per-order and per-session log lines say nothing a backtest's results do
    not, and writing them would cost more than the bars themselves (on Dask workers they
    would go to the worker's stderr)."""
    logger.disable("engine")
    try:
        yield
    finally:
        logger.enable("engine")


class _Progress:
    def __init__(self, report: Callable[[int, int], None], total: int) -> None:
        self._report = report
        self._total = total
        self._every = max(1, total // 100)
        self._done = 0

    def __call__(self, bar: Bar) -> None:
        self._done += 1
        if self._done % self._every == 0 or self._done == self._total:
            self._report(self._done, self._total)


def equity_curve(
    bars: Mapping[str, Sequence[Bar]], fills: Sequence[Fill], cash: Decimal
) -> list[EquityPoint]:
    """Equity and gross exposure at every bar's end: cash after the fills up to then, plus
    each position at its symbol's latest close. Computed from the fills after the run, so the
    curve is exact whatever order the engine handled same-time events in."""
    ends = sorted(
        {(bar_end(bar), symbol, bar.close) for symbol, rows in bars.items() for bar in rows}
    )
    ordered = sorted(fills, key=lambda f: f.ts_ns)
    held: dict[str, Decimal] = {}
    closes: dict[str, Decimal] = {}
    curve: list[EquityPoint] = []
    next_fill = 0
    for i, (end, symbol, close) in enumerate(ends):
        closes[symbol] = close
        if i + 1 < len(ends) and ends[i + 1][0] == end:
            continue  # one point per bar time, once every symbol's close is in
        while next_fill < len(ordered) and ordered[next_fill].ts_ns <= end:
            fill = ordered[next_fill]
            units = fill.qty * fill.side.sign
            cash -= units * fill.price * contract_multiplier(fill.symbol) + fill.fee
            held[fill.symbol] = held.get(fill.symbol, ZERO) + units
            next_fill += 1
        values = [
            qty * closes[s] * contract_multiplier(s) for s, qty in held.items() if s in closes
        ]
        curve.append(
            EquityPoint(end, cash + sum(values, ZERO), sum((abs(v) for v in values), ZERO))
        )
    return curve


def round_trips(fills: Sequence[Fill]) -> list[RoundTrip]:
    """Closed trades from fills, average cost per symbol (the ``Portfolio``'s accounting):
    each fill that reduces a position is a round trip of the quantity it closes, net of its
    own fee and the share of the entry fees it carries."""
    trips: list[RoundTrip] = []
    book = Portfolio()
    entries: dict[str, tuple[Decimal, int]] = {}  # fees carried by what is held; opened at
    for fill in fills:
        before = book.position(fill.symbol)
        held = before.qty if before is not None else ZERO
        avg = before.avg_cost if before is not None else ZERO
        realized = before.realized_pnl if before is not None else ZERO
        position = book.apply_fill(fill)
        fees, opened = entries.get(fill.symbol, (ZERO, fill.ts_ns))
        if held == ZERO or (held > ZERO) == (fill.side.sign > 0):
            entries[fill.symbol] = (fees + fill.fee, opened if held else fill.ts_ns)
            continue
        closed = min(fill.qty, abs(held))
        entry_fees = fees * closed / abs(held)
        exit_fee = fill.fee * closed / fill.qty
        trips.append(
            RoundTrip(
                symbol=fill.symbol,
                qty=closed if held > ZERO else -closed,
                entry_ns=opened,
                exit_ns=fill.ts_ns,
                entry_price=avg,
                exit_price=fill.price,
                pnl=position.realized_pnl - realized - entry_fees - exit_fee,
                fees=entry_fees + exit_fee,
            )
        )
        if position.qty == ZERO:
            entries.pop(fill.symbol, None)
        elif (position.qty > ZERO) == (held > ZERO):
            entries[fill.symbol] = (fees - entry_fees, opened)
        else:  # through zero: the rest opens a new trade at this fill
            entries[fill.symbol] = (fill.fee - exit_fee, fill.ts_ns)
    return trips


# -- bars --------------------------------------------------------------------------------------


def load_bars(spec: BacktestSpec) -> tuple[dict[str, list[Bar]], tuple[str, ...]]:
    """The spec's bars per symbol, and where they came from."""
    if spec.data:
        return _bars_from_path(Path(spec.data), spec), (str(spec.data),)
    from engine.data.backfill import BundledSource, SourceUnavailable, StoreSource
    from engine.data.store import HistoryStore

    settings = load_settings()
    chain: list = []
    if settings.s3.configured:
        chain.append(StoreSource(HistoryStore(settings.s3)))
    chain.append(BundledSource())
    bars: dict[str, list[Bar]] = {}
    used: list[str] = []
    for symbol in spec.symbols:
        for source in chain:
            try:
                found = source.fetch(symbol, spec.timeframe, spec.start, spec.end)
            except SourceUnavailable as error:
                logger.warning(
                    "backtest: {} is unavailable ({}); trying the next source", source.name, error
                )
                continue
            if found:
                bars[symbol] = found
                used.append(f"{symbol}: {source.name}")
                break
    return bars, tuple(used)


def _bars_from_path(path: Path, spec: BacktestSpec) -> dict[str, list[Bar]]:
    from engine.data.ingest import load_file

    if not path.exists():
        raise InputError(f"{path} does not exist.")
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    wanted = set(spec.symbols)
    bars: dict[str, list[Bar]] = {}
    for file in files:
        if not file.is_file() or not file.name.lower().endswith(
            (".zip", ".csv", ".csv.gz", ".parquet")
        ):
            continue
        if path.is_dir() and not _may_hold(file, wanted):
            continue
        try:
            loaded = load_file(file)
        except InputError:
            continue
        for rows in loaded.series.values():
            for row in rows:
                if (
                    isinstance(row, Bar)
                    and row.symbol in wanted
                    and row.timeframe == spec.timeframe
                    and spec.start <= ns_to_datetime(row.ts_ns, NEW_YORK).date() <= spec.end
                ):
                    bars.setdefault(row.symbol, []).append(row)
    for series in bars.values():
        series.sort(key=lambda bar: bar.ts_ns)
    return bars


def _may_hold(file: Path, symbols: set[str]) -> bool:
    """A Lean file sits in a folder named for its symbol, or is named for it (daily zips)."""
    names = {part.upper() for part in file.parts} | {file.name.split(".")[0].upper()}
    return any(symbol in names or f"DA-{symbol}-" in file.name.upper() for symbol in symbols)
