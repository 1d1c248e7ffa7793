"""The history store's Parquet schema, version 1: columns, metadata and exact price encoding.

Prices are stored as int64 counts of 1/1,000,000 dollar, so every price reads
back as exactly the Decimal it was written from. The unit is finer than the
1/10,000 tick grid because real vendor files carry such prices (Pooksoft's AAPL
close 161.059998). A price on the 1/10,000 grid reads back as
``Decimal(n).scaleb(-4)``, the very form Lean's reader makes; a finer one
keeps six places. A price finer still is not silently rounded: ``encode_price``
refuses it. Timestamps are int64 ns since the
epoch (UTC), sizes and volumes int64.

Every file carries its schema version, kind, timeframe, symbol and source in
the Parquet key-value metadata (``tickdeck.*``), and the object key carries the
version too (``v1/...``), so a reader can refuse what it does not understand.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import StrEnum

import pyarrow as pa
import pyarrow.parquet as pq

from engine.core.errors import DataError
from engine.core.models import Bar, Quote, Trade

SCHEMA_VERSION = 1
PRICE_EXPONENT = -6
_TICK_UNITS = 100  # stored units per 1/10,000 dollar
META_PREFIX = b"tickdeck."


class Kind(StrEnum):
    """What a stored object holds."""

    BARS = "bars"
    TRADES = "trades"
    QUOTES = "quotes"


TIMEFRAMES: tuple[str, ...] = ("1Min", "5Min", "1Hour", "1Day")
"""The bar timeframes the store keeps."""

BAR_SCHEMA = pa.schema(
    [
        ("ts_ns", pa.int64()),
        ("open", pa.int64()),
        ("high", pa.int64()),
        ("low", pa.int64()),
        ("close", pa.int64()),
        ("volume", pa.int64()),
    ]
)
TRADE_SCHEMA = pa.schema(
    [
        ("ts_ns", pa.int64()),
        ("price", pa.int64()),
        ("size", pa.int64()),
        ("exchange", pa.string()),
    ]
)
QUOTE_SCHEMA = pa.schema(
    [
        ("ts_ns", pa.int64()),
        ("bid", pa.int64()),
        ("bid_size", pa.int64()),
        ("ask", pa.int64()),
        ("ask_size", pa.int64()),
    ]
)
SCHEMAS: dict[Kind, pa.Schema] = {
    Kind.BARS: BAR_SCHEMA,
    Kind.TRADES: TRADE_SCHEMA,
    Kind.QUOTES: QUOTE_SCHEMA,
}


def parse_timeframe(value: str) -> str:
    """``value`` as one of ``TIMEFRAMES`` (case-insensitive); ``ValueError`` naming the choices."""
    for timeframe in TIMEFRAMES:
        if timeframe.lower() == value.strip().lower():
            return timeframe
    raise ValueError(f"unknown timeframe '{value}': use {', '.join(TIMEFRAMES)}")


def encode_price(price: Decimal) -> int:
    """``price`` in 1/1,000,000 dollar; ``ValueError`` if it is finer than that or not finite."""
    if not price.is_finite():
        raise ValueError(f"price {price} is not a finite number")
    scaled = price.scaleb(-PRICE_EXPONENT)
    units = int(scaled)
    if units != scaled:
        raise ValueError(f"price {price} is finer than 1/1,000,000 dollar")
    return units


def decode_price(units: int) -> Decimal:
    """The exact Decimal price of ``units`` 1/1,000,000 dollar (four places when that is exact)."""
    if units % _TICK_UNITS == 0:
        return Decimal(units // _TICK_UNITS).scaleb(-4)
    return Decimal(units).scaleb(PRICE_EXPONENT)


def bars_table(bars: Sequence[Bar]) -> pa.Table:
    """``bars`` as a version-1 bar table (no metadata); ``ValueError`` for an unencodable price."""
    return pa.table(
        {
            "ts_ns": [bar.ts_ns for bar in bars],
            "open": [encode_price(bar.open) for bar in bars],
            "high": [encode_price(bar.high) for bar in bars],
            "low": [encode_price(bar.low) for bar in bars],
            "close": [encode_price(bar.close) for bar in bars],
            "volume": [bar.volume for bar in bars],
        },
        schema=BAR_SCHEMA,
    )


def trades_table(trades: Sequence[Trade]) -> pa.Table:
    return pa.table(
        {
            "ts_ns": [trade.ts_ns for trade in trades],
            "price": [encode_price(trade.price) for trade in trades],
            "size": [trade.size for trade in trades],
            "exchange": [trade.exchange for trade in trades],
        },
        schema=TRADE_SCHEMA,
    )


def quotes_table(quotes: Sequence[Quote]) -> pa.Table:
    return pa.table(
        {
            "ts_ns": [quote.ts_ns for quote in quotes],
            "bid": [encode_price(quote.bid) for quote in quotes],
            "bid_size": [quote.bid_size for quote in quotes],
            "ask": [encode_price(quote.ask) for quote in quotes],
            "ask_size": [quote.ask_size for quote in quotes],
        },
        schema=QUOTE_SCHEMA,
    )


def bars_from_table(table: pa.Table, symbol: str, timeframe: str) -> list[Bar]:
    """The Bar models of a version-1 bar table, prices exact."""
    columns = [table.column(name).to_pylist() for name in BAR_SCHEMA.names]
    prices: dict[int, Decimal] = {}

    def price(units: int) -> Decimal:
        value = prices.get(units)
        if value is None:
            value = prices[units] = decode_price(units)
        return value

    return [
        Bar(symbol, ts, price(o), price(h), price(lo), price(c), v, timeframe)
        for ts, o, h, lo, c, v in zip(*columns, strict=True)
    ]


def trades_from_table(table: pa.Table, symbol: str) -> list[Trade]:
    ts, price, size, exchange = (table.column(n).to_pylist() for n in TRADE_SCHEMA.names)
    return [
        Trade(symbol, t, decode_price(p), s, x)
        for t, p, s, x in zip(ts, price, size, exchange, strict=True)
    ]


def quotes_from_table(table: pa.Table, symbol: str) -> list[Quote]:
    columns = (table.column(n).to_pylist() for n in QUOTE_SCHEMA.names)
    return [
        Quote(symbol, t, decode_price(b), bs, decode_price(a), az)
        for t, b, bs, a, az in zip(*columns, strict=True)
    ]


def with_metadata(table: pa.Table, **values: str) -> pa.Table:
    """``table`` carrying the schema version and ``values`` as ``tickdeck.*`` metadata."""
    metadata = {META_PREFIX + b"schema_version": str(SCHEMA_VERSION).encode()}
    for name, value in sorted(values.items()):
        metadata[META_PREFIX + name.encode()] = value.encode()
    return table.replace_schema_metadata(metadata)


def metadata_of(table: pa.Table) -> dict[str, str]:
    """The ``tickdeck.*`` metadata of ``table``, without the prefix."""
    raw = table.schema.metadata or {}
    return {
        key[len(META_PREFIX) :].decode(): value.decode()
        for key, value in raw.items()
        if key.startswith(META_PREFIX)
    }


def to_parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as Parquet bytes; the same table always gives the same bytes (no timestamps)."""
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=["exchange"] if "exchange" in table.column_names else False,
        write_statistics=True,
    )
    return sink.getvalue()


def read_parquet_bytes(data: bytes, where: str, kind: Kind) -> pa.Table:
    """A stored object's table; ``DataError`` naming ``where`` if it is not a version-1 ``kind``."""
    try:
        # One small file per call, many calls on the fetch threads: Arrow's own thread pool
        # would only add hand-offs (4x slower here).
        table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    except (pa.ArrowException, OSError) as error:
        raise DataError(where, f"is not a readable Parquet file ({error})") from None
    version = metadata_of(table).get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise DataError(
            where, f"has schema version {version}, this tickdeck reads {SCHEMA_VERSION}"
        )
    expected = SCHEMAS[kind]
    if not table.schema.remove_metadata().equals(expected):
        raise DataError(where, f"does not have the version-{SCHEMA_VERSION} {kind} columns")
    return table


def to_ipc_bytes(table: pa.Table) -> bytes:
    """``table`` (checked, metadata kept) in Arrow's IPC file form: what the local cache keeps,
    since reading it back costs a twentieth of decoding the Parquet it came from."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_ipc_bytes(data: bytes) -> pa.Table | None:
    """A table ``to_ipc_bytes`` wrote; None if the bytes are damaged (a cache entry to refetch)."""
    try:
        return pa.ipc.open_file(pa.BufferReader(data)).read_all()
    except (pa.ArrowException, OSError):
        return None


def merge_tables(tables: Iterable[pa.Table], schema: pa.Schema) -> pa.Table:
    """One table sorted by ``ts_ns``, a later table's row replacing an earlier one's at the same time."""
    combined = pa.concat_tables([t.replace_schema_metadata(None).cast(schema) for t in tables])
    if combined.num_rows == 0:
        return combined
    stamps = combined.column("ts_ns").to_pylist()
    last_index = {ts: index for index, ts in enumerate(stamps)}
    keep = sorted(last_index.values(), key=lambda index: stamps[index])
    return combined.take(pa.array(keep, pa.int64()))


def content_digest(data: bytes) -> str:
    """The sha256 of an object's bytes, kept in its metadata so a re-ingest can skip it."""
    return hashlib.sha256(data).hexdigest()
