"""Backfill: the last N days of bars for the watchlist, from the first source that has them.

The chain is the history store, then Alpaca's historical REST API, then
yfinance (an optional extra), then the bundled Pooksoft daily sample. Each
source is asked only for the sessions (NYSE calendar) still missing, so a gap
in the store is filled from the next source; every frame records which source
it came from, and what a later source fetched is written back into the store.
A source that cannot be reached is skipped with one sentence in the log and in
``BackfillResult.notes``, and the chain goes on: nothing here raises for an
outage.

All of it is blocking IO, meant for a worker thread (the engine runs it on one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Protocol

import urllib3
from loguru import logger

from engine.alpaca.mapping import bar_from_alpaca
from engine.config import Mode
from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.core.errors import TickdeckError
from engine.core.models import Bar
from engine.core.prices import to_decimal
from engine.data.store.calendar import sessions
from engine.data.store.errors import StoreUnavailable
from engine.health import HealthMonitor, Status

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.data.store.history import HistoryStore

ALPACA_PAGE_LIMIT = 10_000
_YF_INTERVALS = {"1Min": "1m", "5Min": "5m", "1Hour": "60m", "1Day": "1d"}
_SIX_PLACES = Decimal("0.000001")


class SourceUnavailable(TickdeckError):
    """A history source cannot answer now (down, no credentials, not installed)."""


class BarSource(Protocol):
    """Somewhere bars come from. ``fetch`` raises ``SourceUnavailable``, never anything else."""

    name: str

    def fetch(self, symbol: str, timeframe: str, start: date, end: date) -> list[Bar]: ...


def trading_day(bar: Bar) -> date:
    """The New York date of a bar's start."""
    return ns_to_datetime(bar.ts_ns, NEW_YORK).date()


class StoreSource:
    """The history store as the chain's first source."""

    name = "store"

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    def fetch(self, symbol: str, timeframe: str, start: date, end: date) -> list[Bar]:
        try:
            return self.store.read_bars(symbol, timeframe, start, end)
        except StoreUnavailable as error:
            raise SourceUnavailable(str(error)) from None


class AlpacaSource:
    """Alpaca's historical bars, ``GET /v2/stocks/{symbol}/bars``, raw (unadjusted) prices.

    Numbers are parsed straight to Decimal from the JSON text, never through float.
    """

    name = "alpaca"

    def __init__(
        self, data_url: str, key_id: str, secret_key: str, feed: str = "iex", timeout_s: float = 10
    ) -> None:
        self.data_url = data_url.rstrip("/")
        self.feed = feed
        self._headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key}
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=urllib3.Retry(
                total=2, connect=0, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504)
            ),
        )

    def fetch(self, symbol: str, timeframe: str, start: date, end: date) -> list[Bar]:
        query = {
            "timeframe": timeframe,
            "start": f"{start.isoformat()}T00:00:00Z",
            "end": f"{(end + timedelta(days=1)).isoformat()}T04:00:00Z",
            "limit": str(ALPACA_PAGE_LIMIT),
            "adjustment": "raw",
            "feed": self.feed,
        }
        bars: list[Bar] = []
        token: str | None = None
        while True:
            if token:
                query["page_token"] = token
            page = self._get(f"/v2/stocks/{urllib.parse.quote(symbol)}/bars", query)
            for row in page.get("bars") or []:
                bars.append(_alpaca_bar(symbol, timeframe, row))
            token = page.get("next_page_token")
            if not token:
                return bars

    def _get(self, path: str, query: dict[str, str]) -> dict:
        url = f"{self.data_url}{path}?{urllib.parse.urlencode(query)}"
        try:
            response = self._http.request("GET", url, headers=self._headers)
        except urllib3.exceptions.HTTPError as error:
            raise SourceUnavailable(f"Alpaca historical data cannot be reached ({error})") from None
        if response.status != 200:
            text = response.data.decode("utf-8", "replace")[:200]
            raise SourceUnavailable(f"Alpaca historical data answered {response.status}: {text}")
        try:
            return json.loads(response.data, parse_float=Decimal)
        except ValueError:
            raise SourceUnavailable("Alpaca historical data sent a body that is not JSON") from None


def _alpaca_bar(symbol: str, timeframe: str, row: dict) -> Bar:
    try:
        return bar_from_alpaca(symbol, row, timeframe)
    except (KeyError, TypeError, ValueError) as error:
        raise SourceUnavailable(f"Alpaca sent a bar tickdeck cannot read ({error})") from None


class YFinanceSource:
    """Yahoo Finance through the optional ``yfinance`` package (``pip install 'tickdeck[yfinance]'``).

    It serves binary floats: each price is rounded to 1/1,000,000 dollar, the store's unit.
    """

    name = "yfinance"

    def fetch(self, symbol: str, timeframe: str, start: date, end: date) -> list[Bar]:
        try:
            import yfinance
        except ImportError:
            raise SourceUnavailable(
                "yfinance is not installed (pip install 'tickdeck[yfinance]')"
            ) from None
        interval = _YF_INTERVALS.get(timeframe)
        if interval is None:
            raise SourceUnavailable(f"yfinance has no {timeframe} bars")
        try:
            frame = yfinance.Ticker(symbol).history(
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),
                interval=interval,
                auto_adjust=False,
                actions=False,
                raise_errors=True,
            )
        except Exception as error:  # yfinance raises whatever its HTTP stack raises
            raise SourceUnavailable(f"yfinance failed ({type(error).__name__}: {error})") from None
        bars = []
        for stamp, row in frame.iterrows():
            prices = [
                to_decimal(float(row[name])).quantize(_SIX_PLACES)
                for name in ("Open", "High", "Low", "Close")
            ]
            bars.append(Bar(symbol, int(stamp.value), *prices, int(row["Volume"]), timeframe))
        return bars


class BundledSource:
    """The Pooksoft daily sample shipped with tickdeck (MIT; about two years to 2021-04-21)."""

    name = "bundled"

    def __init__(self) -> None:
        self._cache: dict[str, list[Bar]] = {}

    def _bars(self, symbol: str) -> list[Bar]:
        if symbol not in self._cache:
            from engine.data.ingest import load_file

            folder = resources.files("engine.data") / "bundled" / "pooksoft"
            entry = next(
                (e for e in folder.iterdir() if e.name.startswith(f"DA-{symbol}-T-")), None
            )
            bars: list[Bar] = []
            if entry is not None:
                with resources.as_file(entry) as path:
                    loaded = load_file(path)
                bars = [bar for rows in loaded.series.values() for bar in rows]
            self._cache[symbol] = bars
        return self._cache[symbol]

    def last_day(self, symbols: Sequence[str]) -> date | None:
        """The newest day the sample holds for any of ``symbols``."""
        days = [trading_day(bars[-1]) for s in symbols if (bars := self._bars(s))]
        return max(days) if days else None

    def fetch(self, symbol: str, timeframe: str, start: date, end: date) -> list[Bar]:
        if timeframe != "1Day":
            return []
        return [bar for bar in self._bars(symbol) if start <= trading_day(bar) <= end]


@dataclass(slots=True, frozen=True)
class FrameSource:
    """Which source supplied which sessions of one series."""

    source: str
    first: date
    last: date
    sessions: int
    bars: int


@dataclass(slots=True)
class BackfillResult:
    """One series' backfill: its bars (oldest first), each frame's source, and what is missing."""

    symbol: str
    timeframe: str
    bars: list[Bar] = field(default_factory=list)
    frames: list[FrameSource] = field(default_factory=list)
    missing: list[date] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def sources(self) -> str:
        return "+".join(frame.source for frame in self.frames) or "none"


class BackfillChain:
    """Sources in order; ``store`` (if any) is written the bars later sources supply."""

    def __init__(self, sources: Sequence[BarSource], store: HistoryStore | None = None) -> None:
        self.sources = list(sources)
        self.store = store
        self.store_down: str | None = None  # why the store failed, the last time it did

    def load(self, symbol: str, timeframe: str, start: date, end: date) -> BackfillResult:
        """Bars of ``symbol`` for the NYSE sessions from ``start`` to ``end``, from the chain."""
        result = BackfillResult(symbol, timeframe)
        missing = {session.day for session in sessions(start, end)}
        for index, source in enumerate(self.sources):
            if not missing:
                break
            try:
                fetched = source.fetch(symbol, timeframe, min(missing), max(missing))
            except SourceUnavailable as error:
                following = self.sources[index + 1].name if index + 1 < len(self.sources) else None
                then = f"; falling back to {following}" if following else ""
                note = f"{source.name}: {error}{then}"
                result.notes.append(note)
                logger.warning("history {} {}: {}", symbol, timeframe, note)
                if source.name == StoreSource.name:
                    self.store_down = str(error)
                continue
            if source.name == StoreSource.name:
                self.store_down = None
            got = [bar for bar in fetched if trading_day(bar) in missing]
            if not got:
                continue
            days = sorted({trading_day(bar) for bar in got})
            result.frames.append(FrameSource(source.name, days[0], days[-1], len(days), len(got)))
            result.bars += got
            missing.difference_update(days)
            if source.name != StoreSource.name:
                self._write_back(got, source.name, result)
        result.bars.sort(key=lambda bar: bar.ts_ns)
        result.missing = sorted(missing)
        return result

    def _write_back(self, bars: list[Bar], source: str, result: BackfillResult) -> None:
        if self.store is None or self.store_down is not None:
            return
        try:
            self.store.write_bars(bars, source)
        except StoreUnavailable as error:
            self.store_down = str(error)
            result.notes.append(f"store: could not keep the {source} bars ({error})")
            logger.warning("history: {}", result.notes[-1])

    def run(
        self,
        symbols: Sequence[str],
        timeframe: str,
        start: date,
        end: date,
        *,
        progress: Callable[[int, int, BackfillResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[BackfillResult]:
        """``load`` each symbol in turn; ``progress(done, total, result)`` after each; stops early
        when ``cancel`` is set."""
        results = []
        for done, symbol in enumerate(symbols, 1):
            if cancel is not None and cancel.is_set():
                break
            result = self.load(symbol, timeframe, start, end)
            results.append(result)
            if progress is not None:
                progress(done, len(symbols), result)
        return results


# -- the engine's background backfill -------------------------------------------------------

HEALTH_COMPONENT = "history"


def build_chain(settings: Settings, *, sim: bool) -> tuple[BackfillChain, HistoryStore | None]:
    """The chain ``settings`` call for: the store if configured, Alpaca if keys are set (not in
    sim), yfinance, and the bundled sample last."""
    from engine.data.store.history import HistoryStore

    store = HistoryStore(settings.s3) if settings.s3.configured else None
    sources: list[BarSource] = [StoreSource(store)] if store is not None else []
    alpaca = settings.alpaca
    if not sim and alpaca.key_id and alpaca.secret_key:
        sources.append(AlpacaSource(alpaca.data_url, alpaca.key_id, alpaca.secret_key, alpaca.feed))
    if not sim:
        sources.append(YFinanceSource())
    sources.append(BundledSource())
    return BackfillChain(sources, store), store


class HistoryService:
    """Backfills daily bars for the engine's symbols on a worker thread, never on the event loop.

    It runs at engine start and on demand (``start`` again once the last run is done);
    ``results`` holds each symbol's ``BackfillResult`` as it arrives; the health
    component "history" says where the bars came from and whether the store is down.
    Health reports are handed to the engine's loop (``call_soon_threadsafe``), so the
    health registry is only ever touched on the loop's thread.
    """

    def __init__(self, settings: Settings, health: HealthMonitor, *, sim: bool) -> None:
        self.settings = settings
        self.health = health
        self.sim = sim
        self.timeframe = "1Day"
        self.results: dict[str, BackfillResult] = {}
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.done = threading.Event()

    @property
    def enabled(self) -> bool:
        """A store is configured, or the engine is simulated (the bundled sample serves it)."""
        days = self.settings.s3.backfill_days
        return days > 0 and (self.settings.s3.configured or self.sim)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, symbols: Sequence[str], now_ns: int, loop: asyncio.AbstractEventLoop) -> bool:
        """Backfill ``symbols`` for the sessions of the last ``s3.backfill_days`` days up to the
        New York date of ``now_ns`` (the engine clock); False (nothing started) when disabled
        or a run is still going."""
        if not self.enabled or self.running or not symbols:
            return False
        self._cancel.clear()
        self.done.clear()

        def post(callback: Callable[[], None]) -> None:
            # After the engine has stopped its loop is closed, and the report has no one to read it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback)

        self._thread = threading.Thread(
            target=self._run,
            args=(list(symbols), ns_to_datetime(now_ns, NEW_YORK).date(), post),
            name="history-backfill",
            daemon=True,
        )
        # A backfill under way is not a fault: the component stays ok until a source fails.
        post(lambda: self.health.beat(HEALTH_COMPONENT, Status.OK, "backfilling"))
        self._thread.start()
        return True

    def stop(self) -> None:
        """Ask a running backfill to stop after its current symbol (it is a daemon thread)."""
        self._cancel.set()

    def _run(
        self, symbols: list[str], today: date, post: Callable[[Callable[[], None]], None]
    ) -> None:
        try:
            chain, store = build_chain(self.settings, sim=self.sim)
            end = today
            if self.settings.mode is Mode.SIM:
                # The sim market continues from the sample's last day: warm up on the days before it.
                end = BundledSource().last_day(symbols) or today
            start = end - timedelta(days=self.settings.s3.backfill_days)

            def progress(done: int, total: int, result: BackfillResult) -> None:
                self.results[result.symbol] = result
                detail = f"{done}/{total} symbols; {result.symbol} from {result.sources}"
                logger.debug("history backfill: {}", detail)
                post(lambda: self._report(chain, f"backfilling {detail}"))

            results = chain.run(
                symbols, self.timeframe, start, end, progress=progress, cancel=self._cancel
            )
            post(lambda: self._report(chain, self._summary(results)))
            if store is not None:
                store.close()
        except Exception as error:  # a worker thread must say why it died, not vanish
            logger.exception("history backfill failed")
            message = f"backfill failed: {error}"
            post(lambda: self.health.beat(HEALTH_COMPONENT, Status.DEGRADED, message))
        finally:
            self.done.set()

    @staticmethod
    def _summary(results: list[BackfillResult]) -> str:
        counts: dict[str, int] = {}
        for result in results:
            for frame in result.frames:
                counts[frame.source] = counts.get(frame.source, 0) + 1
        sources = ", ".join(f"{name} {count}" for name, count in counts.items()) or "no source"
        bars = sum(len(result.bars) for result in results)
        return f"{bars} daily bars for {len(results)} symbols ({sources})"

    def _report(self, chain: BackfillChain, detail: str) -> None:
        if chain.store is not None and chain.store_down is not None:
            self.health.beat(
                HEALTH_COMPONENT,
                Status.DEGRADED,
                f"store down, fell back: {detail}; {chain.store_down}",
            )
        else:
            self.health.beat(HEALTH_COMPONENT, Status.OK, detail)

    def bars(self, symbol: str) -> list[Bar]:
        """The backfilled daily bars of ``symbol`` (empty until its backfill is done)."""
        result = self.results.get(symbol)
        return list(result.bars) if result is not None else []
