"""Replay from the history store: ``--data store:`` (the configured bucket) or
``--data s3://bucket/prefix`` (another bucket or folder on the configured server).

``StoreReplaySource`` is a ``ReplaySource`` whose days come from the store
instead of Lean files: per symbol and day, the stored minute quotes and the
stored 1Min bars, merged in release order exactly as a Lean minute replay is
(each bar released at the end of its minute, the quote of that minute just
before it, OPEN and CLOSE around the regular session). One day is read from
the store at a time, as the replay reaches it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.core.errors import InputError
from engine.core.models import Bar
from engine.data.lean import MINUTE_NS, Resolution, session_bounds_ns
from engine.data.replay import (
    _ALL_DAY,
    _DATA_RANK,
    ReplayReport,
    ReplaySource,
    _Item,
    _session_stream,
)
from engine.data.store.errors import StoreUnavailable
from engine.data.store.layout import Series
from engine.data.store.schema import Kind, quotes_from_table
from engine.data.store.settings import StoreSettings

if TYPE_CHECKING:
    from engine.data.store.history import HistoryStore

STORE_SCHEME = "store:"
S3_SCHEME = "s3://"
_REFERENCE_LOOKBACK_DAYS = 10


def is_store_data(data: str | None) -> bool:
    """True when ``--data`` names the history store rather than a Lean path."""
    return bool(data) and data.startswith((STORE_SCHEME, S3_SCHEME))


def store_settings_for(data: str, settings: StoreSettings) -> StoreSettings:
    """``settings`` pointed at the bucket and prefix ``data`` names (``store:`` keeps them)."""
    if not settings.configured:
        raise InputError(
            f"--data {data} reads the history store, but none is configured (set s3.endpoint)"
        )
    if data.startswith(STORE_SCHEME):
        return settings
    bucket, _, prefix = data[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise InputError(f"--data {data} names no bucket: use s3://BUCKET[/PREFIX]")
    try:
        return dataclasses.replace(settings, bucket=bucket, prefix=prefix)
    except ValueError as error:
        raise InputError(f"--data {data}: {error}") from None


class StoreReplaySource(ReplaySource):
    """Minute replay of stored quotes and 1Min bars; see the module docstring."""

    def __init__(
        self,
        store: HistoryStore,
        symbols: Sequence[str] | None = None,
        dates: Sequence[date] | None = None,
        session_only: bool = True,
    ) -> None:
        # The Lean-file parts of ReplaySource are not used: its stream machinery is.
        self.store = store
        self.root = None
        self.resolution = Resolution.MINUTE
        self.session_only = session_only
        self.report = ReplayReport()
        self._days = self._select_stored(symbols, dates)
        self.symbols = sorted({s for names in self._days.values() for s in names})
        self.dates = sorted(self._days)
        self._stream = None
        self._head = None
        self._start_ns = 0
        self._references = {}

    def _select_stored(
        self, symbols: Sequence[str] | None, dates: Sequence[date] | None
    ) -> dict[date, list[str]]:
        try:
            stored = sorted(
                {c.series.symbol for c in self.store.coverage() if c.series.timeframe == "1Min"}
            )
            wanted = [s.upper() for s in symbols] if symbols else stored
            days: dict[date, list[str]] = {}
            for symbol in wanted:
                periods = self.store.objects(Series(Kind.BARS, "1Min", symbol))
                if not periods:
                    self.report.missing.append(f"the store has no 1Min bars for {symbol}")
                for period in periods:
                    day = date.fromisoformat(period)
                    if dates is None or day in dates:
                        days.setdefault(day, []).append(symbol)
        except StoreUnavailable as error:
            raise InputError(str(error)) from None
        if not days:
            raise InputError(f"the history store at {self.store.where} has no 1Min bars to replay")
        return days

    def _day_streams(self, day: date) -> list[Iterator[_Item]]:
        open_ns, close_ns = session_bounds_ns(day)
        window = (open_ns, close_ns) if self.session_only else _ALL_DAY
        streams: list[Iterator[_Item]] = [_session_stream(day, open_ns, close_ns)]
        for symbol in self._days[day]:
            index = len(streams)
            streams.append(self._stored_quotes(symbol, day, index, window))
            streams.append(self._stored_bars(symbol, day, index + 1, window))
        return streams

    def _read(self, series: Series, day: date):
        frame = self.store.read(series, day, day)
        for error in frame.errors:
            self.report.add_error(error)
        self.report.files += len(frame.periods)
        self.report.rows += frame.rows
        return frame

    def _stored_quotes(
        self, symbol: str, day: date, index: int, window: tuple[int, int]
    ) -> Iterator[_Item]:
        low, high = window
        frame = self._read(Series(Kind.QUOTES, "", symbol), day)
        for quote in quotes_from_table(frame.table, symbol):
            if low <= quote.ts_ns <= high:
                yield quote.ts_ns, _DATA_RANK, index, quote

    def _stored_bars(
        self, symbol: str, day: date, index: int, window: tuple[int, int]
    ) -> Iterator[_Item]:
        low, high = window
        for bar in self._read(Series(Kind.BARS, "1Min", symbol), day).bars():
            # A bar belongs to the window its minute starts in: 09:30..15:59 is 390 bars.
            if low <= bar.ts_ns < high:
                yield bar.ts_ns + MINUTE_NS, _DATA_RANK, index, bar

    def references(self, day: date | None = None) -> dict[str, Decimal]:
        """Each symbol's previous close on ``day`` (default: its first day) from the stored daily
        bars, else from the last regular-session minute bar of an earlier stored day, else the
        day's first regular-session open."""
        cached = self._references.get(day)
        if cached is not None:
            return dict(cached)
        result: dict[str, Decimal] = {}
        for symbol in self.symbols:
            first = day or min(d for d, names in self._days.items() if symbol in names)
            price = self._stored_previous_close(symbol, first)
            if price is not None:
                result[symbol] = price
        self._references[day] = result
        return dict(result)

    def _stored_previous_close(self, symbol: str, day: date) -> Decimal | None:
        earlier = day - timedelta(days=_REFERENCE_LOOKBACK_DAYS)
        before = day - timedelta(days=1)
        daily = self.store.read_bars(symbol, "1Day", earlier, before)
        if daily:
            return daily[-1].close
        minute_days = sorted(
            d for d, names in self._days.items() if symbol in names and earlier <= d < day
        )
        for candidate in (*reversed(minute_days), day):
            open_ns, close_ns = session_bounds_ns(candidate)
            bars: list[Bar] = [
                bar
                for bar in self.store.read_bars(symbol, "1Min", candidate, candidate)
                if open_ns <= bar.ts_ns < close_ns
            ]
            if bars:
                return bars[-1].close if candidate != day else bars[0].open
        return None


def open_store_replay(
    data: str, settings: StoreSettings, symbols: Sequence[str] | None = None
) -> StoreReplaySource:
    """A replay of what ``--data store:`` or ``--data s3://bucket/prefix`` names."""
    from engine.data.store.history import HistoryStore

    store = HistoryStore(store_settings_for(data, settings))
    return StoreReplaySource(store, symbols)
