"""The history store: Parquet objects in an S3-compatible bucket (MinIO), through the ``minio`` SDK.

Writes are atomic and idempotent. Each partition is staged under ``tmp/`` and
published with a server-side copy, which S3 applies whole: a reader sees the
old object or the new one, never part of one. Before publishing, the new bytes
are compared with the object already there (its ETag is the MD5 of its bytes):
the same content is not written again, and new rows for a partition that
exists are merged with it by timestamp, so re-ingesting a file adds no rows.

Reads go through the local cache (keyed by object key and ETag) and fetch the
partitions a range needs on a small thread pool. Listings are kept for
``listing_ttl_s`` wall seconds (a process-level IO cache, not market time),
and a write through this store drops them at once.

Every call that cannot reach the server raises ``StoreUnavailable`` with one
sentence; the backfill chain catches it and moves to the next source.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import platformdirs
import pyarrow as pa
import pyarrow.compute
import urllib3
from loguru import logger
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.core.errors import DataError
from engine.core.models import Bar
from engine.data.store.cache import LocalCache
from engine.data.store.errors import StoreUnavailable
from engine.data.store.layout import (
    Series,
    object_key,
    parse_key,
    quarantine_key,
    root_dir,
    series_dir,
    tmp_key,
)
from engine.data.store.schema import (
    SCHEMAS,
    Kind,
    bars_from_table,
    bars_table,
    merge_tables,
    metadata_of,
    read_ipc_bytes,
    read_parquet_bytes,
    to_ipc_bytes,
    to_parquet_bytes,
    with_metadata,
)
from engine.data.store.settings import StoreSettings

APP_NAME = "tickdeck"
DEFAULT_WORKERS = 8
LISTING_TTL_S = 30.0
_MB = 1024 * 1024
_IO_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)


@dataclass(slots=True, frozen=True)
class StoredObject:
    """One partition object as the bucket lists it."""

    key: str
    period: str
    etag: str
    size: int


@dataclass(slots=True, frozen=True)
class WriteResult:
    """What one write did: partitions published, partitions already holding that content, rows."""

    written: int = 0
    unchanged: int = 0
    rows: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            self.written + other.written,
            self.unchanged + other.unchanged,
            self.rows + other.rows,
        )


@dataclass(slots=True)
class Frame:
    """Rows of one series read from the store, and where they came from.

    ``source`` names every source the partitions were written from ("lean",
    "pooksoft+alpaca"); ``errors`` are partitions that could not be read.
    """

    series: Series
    table: pa.Table
    periods: tuple[str, ...] = ()
    source: str = "store"
    bytes: int = 0
    errors: list[DataError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def bars(self) -> list[Bar]:
        return bars_from_table(self.table, self.series.symbol, self.series.timeframe)


@dataclass(slots=True, frozen=True)
class Coverage:
    """What the store holds of one series: its partitions, first and last, and their size."""

    series: Series
    partitions: int
    first: str
    last: str
    bytes: int


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "history"


class HistoryStore:
    """Bars, trades and quotes in a bucket; see the module docstring for the guarantees."""

    def __init__(
        self,
        settings: StoreSettings,
        *,
        cache: LocalCache | None = None,
        workers: int = DEFAULT_WORKERS,
        listing_ttl_s: float = LISTING_TTL_S,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.configured:
            raise StoreUnavailable("no history store is configured (set s3.endpoint)")
        self.settings = settings
        host, tls = settings.host_and_tls()
        self.where = f"{'https' if tls else 'http'}://{host}/{settings.bucket}"
        timeout = settings.timeout_s
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            maxsize=workers,
            # A refused connection fails over at once; a busy server gets two quick retries.
            retries=urllib3.Retry(
                total=2, connect=0, backoff_factor=0.05, status_forcelist=(500, 502, 503, 504)
            ),
        )
        self._client = Minio(
            host,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=tls,
            region=settings.region,
            http_client=http,
        )
        if cache is None:
            root = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
            cache = LocalCache(root, settings.cache_max_mb * _MB)
        self.cache = cache
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._listing_ttl_s = listing_ttl_s
        self._wall = wall
        self._listings: dict[Series, tuple[float, dict[str, StoredObject]]] = {}

    # -- plumbing -------------------------------------------------------------------------------

    def _unavailable(self, doing: str, error: BaseException) -> StoreUnavailable:
        reason = _reason(error)
        return StoreUnavailable(f"the history store at {self.where} failed {doing} ({reason})")

    def _map(self, function: Callable, items: Sequence) -> list:
        if len(items) <= 1:
            return [function(item) for item in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="history-io")
        return list(self._pool.map(function, items))

    def close(self) -> None:
        """Stop the fetch threads (the store may still be used afterwards: they restart)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist; ``StoreUnavailable`` if the server is not there."""
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
                logger.info("history store: created bucket {}", self.where)
        except _IO_ERRORS as error:
            raise self._unavailable("to open its bucket", error) from None

    # -- listing --------------------------------------------------------------------------------

    def objects(self, series: Series, *, fresh: bool = False) -> dict[str, StoredObject]:
        """Every partition of ``series`` by period (a listing at most ``listing_ttl_s`` old)."""
        now = self._wall()
        cached = self._listings.get(series)
        if cached is not None and not fresh and now - cached[0] < self._listing_ttl_s:
            return cached[1]
        found: dict[str, StoredObject] = {}
        try:
            for item in self._client.list_objects(
                self.bucket, prefix=series_dir(self.prefix, series), recursive=True
            ):
                parsed = parse_key(self.prefix, item.object_name)
                if parsed is None or parsed[0] != series:
                    continue
                period = parsed[1]
                etag = (item.etag or "").strip('"')
                found[period] = StoredObject(item.object_name, period, etag, item.size or 0)
        except _IO_ERRORS as error:
            raise self._unavailable(f"to list {series.describe()}", error) from None
        self._listings[series] = (now, found)
        return found

    def coverage(self) -> list[Coverage]:
        """Every series in the store with its partitions, sorted by kind, timeframe and symbol."""
        groups: dict[Series, list[tuple[str, int]]] = {}
        try:
            for item in self._client.list_objects(
                self.bucket, prefix=root_dir(self.prefix), recursive=True
            ):
                parsed = parse_key(self.prefix, item.object_name)
                if parsed is not None:
                    groups.setdefault(parsed[0], []).append((parsed[1], item.size or 0))
        except _IO_ERRORS as error:
            raise self._unavailable("to list its contents", error) from None
        result = []
        for series in sorted(groups):
            periods = sorted(period for period, _ in groups[series])
            total = sum(size for _, size in groups[series])
            result.append(Coverage(series, len(periods), periods[0], periods[-1], total))
        return result

    # -- writing --------------------------------------------------------------------------------

    def write_bars(self, bars: Iterable[Bar], source: str) -> WriteResult:
        """Store ``bars`` (any symbols and timeframes) as written by ``source``."""
        groups: dict[Series, list[Bar]] = {}
        for bar in bars:
            groups.setdefault(Series(Kind.BARS, bar.timeframe, bar.symbol), []).append(bar)
        result = WriteResult()
        for series, rows in groups.items():
            result += self.write(series, bars_table(rows), source)
        return result

    def write(
        self, series: Series, table: pa.Table, source: str, *, replace: bool = False
    ) -> WriteResult:
        """Store the rows of ``table`` (the kind's version-1 columns) in their partitions.

        Bars are merged into partitions already stored (a new bar replaces a stored
        one at the same time). Trades and quotes may share a timestamp, so a time
        says nothing about which row is which: their partitions (whole days, as
        recorded) are replaced. ``replace`` makes any kind's new rows the partitions'
        whole content, for correcting data.
        """
        if series.kind is Kind.BARS and not series.timeframe:
            raise ValueError("bars need a timeframe")
        table = table.cast(SCHEMAS[series.kind])
        stamps = table.column("ts_ns").to_pylist()
        by_period: dict[str, list[int]] = {}
        for index, ts_ns in enumerate(stamps):
            by_period.setdefault(series.period_of(ts_ns), []).append(index)
        existing = self.objects(series, fresh=True)
        jobs = [
            (period, table.take(pa.array(rows, pa.int64())), existing.get(period))
            for period, rows in sorted(by_period.items())
        ]
        try:
            results = self._map(lambda job: self._publish(series, source, replace, *job), jobs)
        finally:
            self._listings.pop(series, None)
        total = WriteResult()
        for result in results:
            total += result
        return total

    def _publish(
        self,
        series: Series,
        source: str,
        replace: bool,
        period: str,
        rows: pa.Table,
        current: StoredObject | None,
    ) -> WriteResult:
        key = object_key(self.prefix, series, period)
        merge = series.kind is Kind.BARS and not replace
        merged = merge_tables([rows], SCHEMAS[series.kind]) if merge else _by_time(rows)
        data = self._encode(series, period, merged, source)
        if current is not None and merge and _md5(data) != current.etag:
            try:
                before = read_parquet_bytes(
                    self.fetch_object(current.key), current.key, series.kind
                )
            except DataError as error:
                # Nothing in it can be merged: the new rows replace it whole.
                logger.warning("history store: replacing {}", error)
            else:
                sources = _sources(metadata_of(before).get("source", ""), source)
                merged = merge_tables([before, merged], SCHEMAS[series.kind])
                data = self._encode(series, period, merged, sources)
        if current is not None and _md5(data) == current.etag:
            return WriteResult(unchanged=1, rows=rows.num_rows)
        staging = tmp_key(self.prefix, uuid.uuid4().hex)
        try:
            self._client.put_object(
                self.bucket,
                staging,
                io.BytesIO(data),
                len(data),
                content_type="application/vnd.apache.parquet",
            )
            self._client.copy_object(self.bucket, key, CopySource(self.bucket, staging))
        except _IO_ERRORS as error:
            raise self._unavailable(f"to write {key}", error) from None
        finally:
            with contextlib.suppress(*_IO_ERRORS):
                self._client.remove_object(self.bucket, staging)
        return WriteResult(written=1, rows=rows.num_rows)

    @staticmethod
    def _encode(series: Series, period: str, table: pa.Table, source: str) -> bytes:
        return to_parquet_bytes(
            with_metadata(
                table,
                kind=series.kind.value,
                timeframe=series.timeframe,
                symbol=series.symbol,
                period=period,
                source=source,
            )
        )

    def quarantine(self, name: str, text: str) -> str:
        """Keep rejected rows (``text``, one per line with file:line) under ``quarantine/``; the key."""
        key = quarantine_key(self.prefix, name)
        data = text.encode()
        try:
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type="text/plain"
            )
        except _IO_ERRORS as error:
            raise self._unavailable(f"to write {key}", error) from None
        return key

    # -- reading --------------------------------------------------------------------------------

    def fetch_object(self, key: str) -> bytes:
        """An object's bytes straight from the server (no cache)."""
        try:
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()
        except _IO_ERRORS as error:
            raise self._unavailable(f"to read {key}", error) from None

    def raw_get(self, keys: Sequence[str]) -> int:
        """GET ``keys`` on the fetch threads and return the bytes received (the benchmark's baseline)."""
        return sum(self._map(lambda key: len(self.fetch_object(key)), list(keys)))

    def read(self, series: Series, start: date, end: date) -> Frame:
        """The rows of ``series`` from New York date ``start`` to ``end`` inclusive.

        Partitions that are absent are simply not there (``Frame.periods`` says
        which were); a partition that cannot be decoded is reported in
        ``Frame.errors`` and its rows left out.
        """
        return self.read_many([series], start, end)[0]

    def read_many(self, many: Sequence[Series], start: date, end: date) -> list[Frame]:
        """``read`` for several series at once: one batch of requests on the fetch threads,
        each object decoded on the thread that fetched it (Arrow lets go of the GIL)."""
        listings = self._map(self.objects, list(many))
        wanted = [
            [(series.kind, listing[p]) for p in series.periods(start, end) if p in listing]
            for series, listing in zip(many, listings, strict=True)
        ]
        loaded = iter(self._map(self._load, [job for jobs in wanted for job in jobs]))
        return [
            self._frame(
                series, [item for _, item in jobs], [next(loaded) for _ in jobs], start, end
            )
            for series, jobs in zip(many, wanted, strict=True)
        ]

    def _load(self, job: tuple[Kind, StoredObject]) -> tuple[int, pa.Table | DataError]:
        """(stored bytes, table) of one object, or (stored bytes, why it cannot be read).

        The cache holds the checked table in Arrow IPC form, so a hit neither fetches nor
        decodes Parquet; an object that cannot be read is never cached.
        """
        kind, item = job
        cached = self.cache.get(item.key, item.etag)
        table = read_ipc_bytes(cached) if cached is not None else None
        if table is not None:
            return item.size, table
        data = self.fetch_object(item.key)
        try:
            table = read_parquet_bytes(data, item.key, kind)
        except DataError as error:
            return len(data), error
        self.cache.put(item.key, item.etag, to_ipc_bytes(table))
        return len(data), table

    @staticmethod
    def _frame(
        series: Series,
        items: list[StoredObject],
        loaded: list[tuple[int, pa.Table | DataError]],
        start: date,
        end: date,
    ) -> Frame:
        tables: list[pa.Table] = []
        errors: list[DataError] = []
        sources: set[str] = set()
        for _, table in loaded:
            if isinstance(table, DataError):
                errors.append(table)
                logger.warning("history store: {}", table)
                continue
            sources.update(filter(None, metadata_of(table).get("source", "").split("+")))
            tables.append(table.replace_schema_metadata(None))
        schema = SCHEMAS[series.kind]
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        if series.yearly and tables:
            table = _within(table, start, end)
        return Frame(
            series,
            table,
            periods=tuple(item.period for item in items),
            source="+".join(sorted(sources)) or "store",
            bytes=sum(size for size, _ in loaded),
            errors=errors,
        )

    def read_bars(self, symbol: str, timeframe: str, start: date, end: date) -> list[Bar]:
        """Bars of ``symbol`` at ``timeframe`` from ``start`` to ``end`` (New York dates) inclusive."""
        return self.read(Series(Kind.BARS, timeframe, symbol.upper()), start, end).bars()


def _within(table: pa.Table, start: date, end: date) -> pa.Table:
    """Rows of a yearly partition whose New York date lies from ``start`` to ``end``."""
    keep = [
        index
        for index, ts_ns in enumerate(table.column("ts_ns").to_pylist())
        if start <= ns_to_datetime(ts_ns, NEW_YORK).date() <= end
    ]
    return table.take(pa.array(keep, pa.int64()))


def _by_time(table: pa.Table) -> pa.Table:
    """``table`` in time order, rows of equal time kept in the order given."""
    return table.take(pa.compute.sort_indices(table, [("ts_ns", "ascending")]))


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _sources(before: str, new: str) -> str:
    names = {name for name in before.split("+") if name} | {name for name in new.split("+") if name}
    return "+".join(sorted(names))


def _reason(error: BaseException) -> str:
    if isinstance(error, S3Error):
        return f"{error.code}: {error.message}"
    if isinstance(error, ServerError | InvalidResponseError):
        return str(error).splitlines()[0]
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0] if text else type(error).__name__
