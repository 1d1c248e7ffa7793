"""The SQLite journal: every order, fill, rejection and OMS event, written before the broker acts.

The database runs in WAL mode. With ``synchronous=NORMAL`` a commit is durable
against a crash of the *process* (kill -9, an exception, an OOM kill): the
committed pages are in the WAL file in the OS page cache, and the kernel writes
them out whether or not the process survives. Only a power loss or a kernel
crash can lose the last few commits, because NORMAL does not fsync the WAL on
every commit. ``synchronous="FULL"`` fsyncs each commit and survives power loss
too, at the price of one disk flush per write (milliseconds on most disks).

Every write method commits before it returns, unless it runs inside
``transaction()``, which groups the writes of one logical step (an order, its
event and the id sequence) into a single commit. Statements are fixed strings,
so the sqlite3 module's statement cache prepares each one once.

Decimals are stored as TEXT, so they come back exactly as they went in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from loguru import logger

from engine.core.errors import TickdeckError
from engine.core.models import (
    Fill,
    Order,
    OrderClass,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from engine.sqlite_rows import (
    FILL_COLUMNS,
    ORDER_CLASS_MIGRATION,
    ORDER_COLUMNS,
    PARENTS_MIGRATION,
    decode_decimal,
    fill_from_row,
    fill_to_row,
    order_from_row,
    order_to_row,
)
from engine.sqlite_wal import WalCheckpointer

SCHEMA_VERSION = 3
# Backstop for the WAL size when nobody calls flush() (pages of 4 KiB: about 40 MiB).
_WAL_BACKSTOP_PAGES = 10_000

_SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

_SCHEMA_V1 = (
    """
    CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        type TEXT NOT NULL,
        tif TEXT NOT NULL,
        status TEXT NOT NULL,
        created_ns INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL,
        limit_price TEXT,
        stop_price TEXT,
        trail_price TEXT,
        trail_percent TEXT,
        filled_qty TEXT NOT NULL,
        filled_avg_price TEXT,
        broker_order_id TEXT,
        extended_hours INTEGER NOT NULL,
        source TEXT NOT NULL,
        parent_id TEXT,
        replaces TEXT,
        replaced_by TEXT,
        reason TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE fills (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        price TEXT NOT NULL,
        ts_ns INTEGER NOT NULL,
        fee TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        kind TEXT NOT NULL,
        order_id TEXT,
        payload TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE rejections (
        seq INTEGER PRIMARY KEY,
        ts_ns INTEGER NOT NULL,
        request TEXT NOT NULL,
        reason TEXT NOT NULL
    )
    """,
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# Version 2: Alpaca's order classes (bracket, OCO, OTO) and their leg prices.
_SCHEMA_V2 = ORDER_CLASS_MIGRATION

# Version 3: execution algos' parent orders, so a working algo survives a restart.
_SCHEMA_V3 = PARENTS_MIGRATION

# Migrations in order: (the schema version it produces, the statements that produce it).
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, _SCHEMA_V1),
    (2, _SCHEMA_V2),
    (3, _SCHEMA_V3),
)

_UPSERT_ORDER = (
    f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in ORDER_COLUMNS)}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in ORDER_COLUMNS[1:])
)
_SELECT_ORDERS = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders ORDER BY rowid"
_INSERT_FILL = (
    f"INSERT OR IGNORE INTO fills ({', '.join(FILL_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in FILL_COLUMNS)})"
)
_SELECT_FILLS = f"SELECT {', '.join(FILL_COLUMNS)} FROM fills ORDER BY rowid"
_UPSERT_PARENT = (
    "INSERT INTO parents (id, state, updated_ns, record) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_ns = excluded.updated_ns, "
    "record = excluded.record"
)
_INSERT_EVENT = "INSERT INTO events (ts_ns, kind, order_id, payload) VALUES (?, ?, ?, ?)"
_INSERT_REJECTION = "INSERT INTO rejections (ts_ns, request, reason) VALUES (?, ?, ?)"
_SET_KV = (
    "INSERT INTO kv (key, value) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)


class JournalError(TickdeckError):
    """The journal cannot be opened, read or written (a newer schema, a full disk, a bad file)."""


class EventKind(StrEnum):
    """What an ``events`` row records."""

    SUBMIT = "submit"
    UPDATE = "update"
    CANCEL_REQUEST = "cancel_request"
    REPLACE_REQUEST = "replace_request"
    REJECTION = "rejection"
    BROKER_ERROR = "broker_error"
    ILLEGAL_TRANSITION = "illegal_transition"
    UNKNOWN_ORDER = "unknown_order"
    FILL_ANOMALY = "fill_anomaly"
    RECONCILE = "reconcile"
    KILL = "kill"
    KILL_RESET = "kill_reset"
    SESSION = "session"
    ALGO = "algo"  # an execution algo's parent order changed state; the payload has its quality


@dataclass(slots=True, frozen=True)
class JournalEvent:
    """One row of the append-only event log; ``payload`` is the JSON text as written."""

    seq: int
    ts_ns: int
    kind: EventKind
    order_id: str | None
    payload: str


@dataclass(slots=True, frozen=True)
class JournalRejection:
    """A request that risk refused, with the reason the trader saw."""

    ts_ns: int
    request: OrderRequest
    reason: str


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not is_dataclass(value) or isinstance(value, type):
            raise TypeError(f"{kind.__name__} is not JSON serialisable")
        # dataclasses.fields() is slow enough to matter on the order path: look it up once.
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    return {name: getattr(value, name) for name in names}


def to_json(value: Any) -> str:
    """Compact JSON for journal payloads: Decimals as exact strings, dataclasses as objects."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _request_from_json(text: str) -> OrderRequest:
    data = json.loads(text)
    return OrderRequest(
        symbol=data["symbol"],
        side=Side(data["side"]),
        qty=Decimal(data["qty"]),
        type=OrderType(data["type"]),
        tif=TimeInForce(data["tif"]),
        limit_price=decode_decimal(data["limit_price"]),
        stop_price=decode_decimal(data["stop_price"]),
        trail_price=decode_decimal(data["trail_price"]),
        trail_percent=decode_decimal(data["trail_percent"]),
        client_order_id=data["client_order_id"],
        extended_hours=data["extended_hours"],
        source=data["source"],
        parent_id=data["parent_id"],
        # Requests journaled before schema version 2 have no order class.
        order_class=OrderClass(data.get("order_class", OrderClass.SIMPLE)),
        take_profit_price=decode_decimal(data.get("take_profit_price")),
        stop_loss_price=decode_decimal(data.get("stop_loss_price")),
        stop_loss_limit_price=decode_decimal(data.get("stop_loss_limit_price")),
    )


class Journal:
    """An append-mostly SQLite store of the OMS's state, in WAL mode.

    ``path`` may be ``":memory:"`` for tests (no durability, same behaviour).
    """

    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL") -> None:
        mode = synchronous.upper()
        if mode not in _SYNCHRONOUS_MODES:
            choices = ", ".join(_SYNCHRONOUS_MODES)
            raise JournalError(f"journal synchronous mode '{synchronous}' is not one of {choices}")
        self.path = path if str(path) == ":memory:" else Path(path)
        self._depth = 0
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode: a write outside transaction() commits by itself; a step's
            # writes are grouped with explicit BEGIN/COMMIT.
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
            journal_mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute(f"PRAGMA synchronous={mode}")
            # SQLite's automatic checkpoint runs inside whichever commit crosses the threshold,
            # which would put a multi-millisecond stall on an order's path. The engine calls
            # flush() from a housekeeping timer instead; the high threshold is only a backstop.
            self._db.execute(f"PRAGMA wal_autocheckpoint={_WAL_BACKSTOP_PAGES}")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise JournalError(f"cannot open the journal {self.path}: {error}") from None
        self._checkpointer = WalCheckpointer(self.path) if isinstance(self.path, Path) else None
        if journal_mode != "wal" and str(self.path) != ":memory:":
            logger.warning("journal {} runs in {} mode, not WAL", self.path, journal_mode)

    # -- schema ----------------------------------------------------------------------------

    def _migrate(self) -> None:
        if self.schema_version == SCHEMA_VERSION:
            return
        # Read the version again under the write lock, so two processes opening a new
        # journal at once cannot both create the schema.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.path} has schema version {version}, newer than this "
                    f"tickdeck understands ({SCHEMA_VERSION}); upgrade tickdeck to open it"
                )
            for target, statements in _MIGRATIONS:
                if target <= version:
                    continue
                for statement in statements:
                    self._db.execute(statement)
                # PRAGMA takes no parameters; target is an int from the table above.
                self._db.execute(f"PRAGMA user_version={target}")
                logger.debug("journal {} migrated to schema version {}", self.path, target)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the writes inside into one commit (nested uses join the outer one).

        On an exception nothing inside is kept, and the exception propagates.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._execute("BEGIN", ())
        self._depth = 1
        try:
            yield
            self._execute("COMMIT", ())
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    def _execute(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as error:
            raise JournalError(
                f"the journal {self.path} could not record a write: {error}"
            ) from error

    # -- writes ----------------------------------------------------------------------------

    def save_order(self, order: Order) -> None:
        """Insert or update the full order record."""
        self._execute(_UPSERT_ORDER, order_to_row(order))

    def add_fill(self, fill: Fill) -> bool:
        """Record an execution; False (and nothing written) if its id is already journaled."""
        return self._execute(_INSERT_FILL, fill_to_row(fill)).rowcount == 1

    def add_event(
        self, ts_ns: int, kind: EventKind, order_id: str | None, payload: Any = None
    ) -> None:
        """Append to the event log; ``payload`` is any JSON value, Decimal or dataclass."""
        self._execute(_INSERT_EVENT, (ts_ns, kind.value, order_id, to_json(payload)))

    def add_rejection(self, ts_ns: int, request: OrderRequest, reason: str) -> None:
        self._execute(_INSERT_REJECTION, (ts_ns, to_json(request), reason))

    def set_kv(self, key: str, value: str) -> None:
        self._execute(_SET_KV, (key, value))

    def save_parent(self, parent_id: str, state: str, updated_ns: int, record: str) -> None:
        """Insert or update an algo's parent order; ``record`` is its JSON (engine.execution)."""
        self._execute(_UPSERT_PARENT, (parent_id, state, updated_ns, record))

    # -- reads -----------------------------------------------------------------------------

    def get_kv(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def load_orders(self) -> list[Order]:
        """Every order, in the order it was first journaled."""
        return [order_from_row(row) for row in self._db.execute(_SELECT_ORDERS)]

    def load_parents(self) -> list[str]:
        """Every algo parent order's JSON record, in the order it was first journaled."""
        return [row[0] for row in self._db.execute("SELECT record FROM parents ORDER BY rowid")]

    def load_fills(self) -> list[Fill]:
        """Every execution, in the order it was journaled (the order it was applied)."""
        return [fill_from_row(row) for row in self._db.execute(_SELECT_FILLS)]

    def load_rejections(self, limit: int | None = None) -> list[JournalRejection]:
        """Rejected requests, oldest first; with ``limit``, only the most recent ones."""
        sql = "SELECT ts_ns, request, reason FROM rejections ORDER BY seq"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql = (
                "SELECT ts_ns, request, reason FROM "
                "(SELECT seq, ts_ns, request, reason FROM rejections ORDER BY seq DESC LIMIT ?) "
                "ORDER BY seq"
            )
            params = (limit,)
        return [
            JournalRejection(ts_ns=row[0], request=_request_from_json(row[1]), reason=row[2])
            for row in self._db.execute(sql, params)
        ]

    def load_events(self, order_id: str | None = None) -> list[JournalEvent]:
        """The event log, oldest first; with ``order_id``, only that order's events."""
        if order_id is None:
            rows = self._db.execute(
                "SELECT seq, ts_ns, kind, order_id, payload FROM events ORDER BY seq"
            )
        else:
            rows = self._db.execute(
                "SELECT seq, ts_ns, kind, order_id, payload FROM events "
                "WHERE order_id = ? ORDER BY seq",
                (order_id,),
            )
        return [
            JournalEvent(
                seq=row[0], ts_ns=row[1], kind=EventKind(row[2]), order_id=row[3], payload=row[4]
            )
            for row in rows
        ]

    # -- shutdown --------------------------------------------------------------------------

    def flush(self) -> None:
        """Ask for the WAL to be copied into the database file, on a background thread.

        Every write is already durable when it returns; this only keeps the WAL short,
        and returns at once so the checkpoint's fsyncs never stall the event loop.
        """
        if self._checkpointer is not None:
            self._checkpointer.request()

    def checkpoint(self) -> None:
        """Copy the whole WAL into the database file and truncate it, for a tidy shutdown."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Checkpoint and close; the journal cannot be used afterwards."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        try:
            self.checkpoint()
        finally:
            self._db.close()
