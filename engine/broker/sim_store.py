"""The sim venue's paper account and the SQLite file it lives in.

The account (cash, positions, every order open or closed with the venue-only
state of the working ones, every fill) is a SQLite database in WAL mode, written
incrementally: the venue collects what one state change touched in a
``Changes`` and ``AccountStore.write`` puts it in ONE transaction (a fill is the
fill row, the position, the order and the account's cash together), so the file
always holds the account as it was after some whole change, never half of one.

Durability: with ``synchronous=NORMAL`` a committed write survives a crash of
the process (kill -9, an exception, an OOM kill), because the committed WAL
pages are in the OS page cache and the kernel writes them out regardless. A
power loss or kernel crash can lose the last few commits; surviving that needs
``synchronous=FULL`` (an fsync per commit, milliseconds on most disks), which
the venue does not use because a paper account is not worth a disk flush per
fill. The WAL is copied into the database file by a checkpoint every
``CHECKPOINT_EVERY`` commits, on a thread of its own so its fsyncs do not stall
the venue (only writes that outrun it for ``WAL_LIMIT_BYTES`` make the writer
catch up itself); ``close`` checkpoints it completely.

Statements are fixed strings with parameters, so the sqlite3 module's statement
cache prepares each once. Decimals are TEXT, so they come back exactly as they
went in. The schema version is ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
import uuid
import weakref
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from loguru import logger

from engine.core.errors import BrokerError
from engine.core.models import Fill, Order, Position
from engine.sqlite_rows import (
    FILL_COLUMNS,
    ORDER_CLASS_MIGRATION,
    ORDER_COLUMNS,
    decode_decimal,
    decode_int,
    encode_decimal,
    fill_from_row,
    fill_to_row,
    order_from_row,
    order_to_row,
)
from engine.sqlite_wal import WalCheckpointer

SCHEMA_VERSION = 2

# Rows are a few hundred bytes and a change rewrites 2 to 4 pages of them: small pages keep
# the bytes each commit copies, checksums and writes to the WAL down (4096 would be the default).
PAGE_SIZE = 1024
# Commits between WAL checkpoints: about SQLite's default of 1000 pages.
CHECKPOINT_EVERY = 256
# The WAL restarts from its beginning only after a checkpoint has caught up with its end; past
# this size the writer catches up itself (see AccountStore._checkpoint).
WAL_LIMIT_BYTES = 16 * 1024 * 1024

_SCHEMA_V1 = (
    """
    CREATE TABLE account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        account_id TEXT NOT NULL,
        cash TEXT NOT NULL,
        last_equity TEXT NOT NULL,
        order_seq INTEGER NOT NULL,
        fill_seq INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE positions (
        symbol TEXT PRIMARY KEY,
        qty TEXT NOT NULL,
        avg_cost TEXT NOT NULL,
        realized_pnl TEXT NOT NULL,
        fees TEXT NOT NULL,
        last_price TEXT
    )
    """,
    """
    CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
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
        reason TEXT NOT NULL,
        triggered INTEGER NOT NULL,
        watermark TEXT
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE fills (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        price TEXT NOT NULL,
        ts_ns INTEGER NOT NULL,
        fee TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)

# Version 2: Alpaca's order classes and their leg prices (the venue refuses non-simple ones,
# but the Order's columns are the table's).
_SCHEMA_V2 = ORDER_CLASS_MIGRATION

# The Order's columns come first in the statements, so a row decodes with order_from_row;
# the venue's working state (a triggered stop, a trailing stop's water mark) follows them.
_WORKING_COLUMNS = ("triggered", "watermark")
_WORKING = len(ORDER_COLUMNS)  # where the working state starts in a _SELECT_ORDERS row
_ORDER_TABLE_COLUMNS = (*ORDER_COLUMNS, "seq", *_WORKING_COLUMNS)
# seq is arrival order: an update leaves the seq of the row's first insert alone.
_UPSERT_ORDER = (
    f"INSERT INTO orders ({', '.join(_ORDER_TABLE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _ORDER_TABLE_COLUMNS)}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(
        f"{column} = excluded.{column}" for column in (*ORDER_COLUMNS[1:], *_WORKING_COLUMNS)
    )
)
_SELECT_ORDERS = f"SELECT {', '.join((*ORDER_COLUMNS, *_WORKING_COLUMNS))} FROM orders ORDER BY seq"
_UPSERT_POSITION = (
    "INSERT INTO positions (symbol, qty, avg_cost, realized_pnl, fees, last_price) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(symbol) DO UPDATE SET qty = excluded.qty, "
    "avg_cost = excluded.avg_cost, realized_pnl = excluded.realized_pnl, "
    "fees = excluded.fees, last_price = excluded.last_price"
)
# rowid is the order positions were opened in, as the account's dict keeps them.
_SELECT_POSITIONS = (
    "SELECT symbol, qty, avg_cost, realized_pnl, fees, last_price FROM positions ORDER BY rowid"
)
_INSERT_FILL = (
    f"INSERT INTO fills ({', '.join(FILL_COLUMNS)}, seq) "
    f"VALUES ({', '.join('?' for _ in FILL_COLUMNS)}, ?)"
)
_SELECT_FILLS = f"SELECT {', '.join(FILL_COLUMNS)} FROM fills ORDER BY seq"
_INSERT_ACCOUNT = (
    "INSERT INTO account (id, account_id, cash, last_equity, order_seq, fill_seq) "
    "VALUES (1, ?, ?, ?, ?, ?)"
)
_UPDATE_ACCOUNT = (
    "UPDATE account SET cash = ?, last_equity = ?, order_seq = ?, fill_seq = ? WHERE id = 1"
)
_SELECT_ACCOUNT = "SELECT account_id, cash, last_equity, order_seq, fill_seq FROM account"
_MAX_SEQS = (
    "SELECT (SELECT coalesce(max(seq), 0) FROM orders), (SELECT coalesce(max(seq), 0) FROM fills)"
)

# SQLite's primary result codes for a file another connection has locked.
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# What a damaged file or a damaged row raises while it is read.
_CORRUPTION = (sqlite3.DatabaseError, ValueError, TypeError, InvalidOperation)


@dataclass(slots=True)
class WorkingState:
    """What the venue alone knows about a working order."""

    triggered: bool = False  # a stop (or trailing stop) that has fired
    watermark: Decimal | None = None  # a trailing stop's high (sell) or low (buy) water mark


@dataclass(slots=True)
class PaperAccount:
    """The venue's books: its own record of cash, positions, orders and fills."""

    account_id: str
    cash: Decimal
    last_equity: Decimal
    order_seq: int = 0
    fill_seq: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)  # by client_order_id, in arrival order
    working: dict[str, WorkingState] = field(default_factory=dict)  # open orders only
    fills: list[Fill] = field(default_factory=list)

    @classmethod
    def fresh(cls, starting_cash: Decimal) -> PaperAccount:
        # A new id per account keeps venue and execution ids unique across resets,
        # so a journal that outlives a reset never mistakes a new fill for an old one.
        return cls(
            account_id=f"sim-{uuid.uuid4().hex[:12]}",
            cash=starting_cash,
            last_equity=starting_cash,
        )

    def next_order_id(self) -> str:
        self.order_seq += 1
        return f"{self.account_id}-o{self.order_seq}"

    def next_fill_id(self) -> str:
        self.fill_seq += 1
        return f"{self.account_id}-x{self.fill_seq}"


@dataclass(slots=True)
class Changes:
    """What one venue state change touched, written together by ``AccountStore.write``.

    The account row (cash, last equity, id sequences) goes out with every
    write; ``account`` marks a change that touched nothing else (the last
    equity set at the close).
    """

    orders: dict[str, Order] = field(default_factory=dict)  # by id, with their working state
    positions: dict[str, Position] = field(default_factory=dict)  # by symbol
    fills: list[Fill] = field(default_factory=list)  # new executions, in order
    account: bool = False  # the account row changed on its own (last equity at the close)

    def __bool__(self) -> bool:
        return bool(self.orders or self.positions or self.fills or self.account)

    def clear(self) -> None:
        self.orders.clear()
        self.positions.clear()
        self.fills.clear()
        self.account = False


class AccountStore:
    """The paper account's SQLite file, open for incremental writes (use ``open_account``)."""

    def __init__(self, path: Path, db: sqlite3.Connection, order_seq: int, fill_seq: int) -> None:
        self.path = path
        self._wal = Path(f"{path}-wal")
        self._db = db
        # Row sequences give arrival order in tables keyed by id alone (no rowid, one B-tree).
        self._order_seq = order_seq
        self._fill_seq = fill_seq
        self._commits = 0
        self._checkpointer = WalCheckpointer(path)
        # A store dropped without close() (a test, a venue never stopped) ends the thread too.
        weakref.finalize(self, self._checkpointer.stop, wait=False)

    def write(self, account: PaperAccount, changes: Changes) -> None:
        """Write ``changes`` and the account row in one transaction; ``BrokerError`` if refused.

        When this returns the change survives a crash of the process; when it
        raises, nothing of it was written.
        """
        db = self._db
        working = account.working
        order_seq, fill_seq = self._order_seq, self._fill_seq
        try:
            db.execute("BEGIN")
            try:
                for order in changes.orders.values():
                    order_seq += 1
                    db.execute(_UPSERT_ORDER, _order_row(order, order_seq, working.get(order.id)))
                for position in changes.positions.values():
                    db.execute(_UPSERT_POSITION, _position_row(position))
                for fill in changes.fills:
                    fill_seq += 1
                    db.execute(_INSERT_FILL, (*fill_to_row(fill), fill_seq))
                db.execute(
                    _UPDATE_ACCOUNT,
                    (
                        str(account.cash),
                        str(account.last_equity),
                        account.order_seq,
                        account.fill_seq,
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise BrokerError(
                f"the sim account could not be saved to {self.path}: {error}"
            ) from error
        self._order_seq, self._fill_seq = order_seq, fill_seq
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Have the thread checkpoint, or do it here when the WAL has outgrown its limit.

        While writes come faster than a checkpoint takes, the thread's
        checkpoints never reach the end of the WAL, so it never restarts and
        only grows. Then one checkpoint here, between writes, does reach the
        end; it pays the fsyncs, once per ``WAL_LIMIT_BYTES`` of writes.
        """
        try:
            size = self._wal.stat().st_size
        except OSError:
            size = 0
        if size <= WAL_LIMIT_BYTES:
            self._checkpointer.request()
            return
        try:
            # Busy, and so nothing done, while the thread is checkpointing: tried again later.
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:
            logger.warning("sim account {}: checkpoint failed: {}", self.path, error)

    def close(self) -> None:
        """Copy the whole WAL into the database file and close it, for a tidy shutdown."""
        self._checkpointer.stop()
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as error:
            # Nothing is lost: the WAL keeps every commit, and the next open reads it.
            logger.warning("sim account {}: final checkpoint failed: {}", self.path, error)
        finally:
            self._db.close()


def open_account(
    path: Path, starting_cash: Decimal, *, reset: bool
) -> tuple[AccountStore, PaperAccount, bool]:
    """Open the account file at ``path``, creating a fresh account if it holds none.

    Returns the store, the account and whether the account is new. ``reset``
    deletes whatever was there first. An unreadable, corrupt or foreign file is
    a ``BrokerError`` telling the trader to start with --reset-sim.
    """
    try:
        if reset:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None)
    except (OSError, sqlite3.Error) as error:
        raise BrokerError(f"cannot open the sim account file {path}: {error}") from None
    try:
        # PRAGMA takes no parameters; the numbers here are constant ints. page_size only
        # takes effect on a new file, before its first write.
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        journal_mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA wal_autocheckpoint=0")  # _Checkpointer does it off the venue's thread
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        account, created = _load_or_create(db, path, starting_cash)
        order_seq, fill_seq = db.execute(_MAX_SEQS).fetchone()
        # Nothing else writes the file. If something does, a write fails at once (an alert,
        # retried with the next change) rather than stall the venue for sqlite3's 5 s.
        db.execute("PRAGMA busy_timeout=0")
    except BrokerError:
        db.close()
        raise
    except _CORRUPTION as error:
        db.close()
        if isinstance(error, sqlite3.Error) and error.sqlite_errorcode & 0xFF in _BUSY:
            raise BrokerError(
                f"the sim account file {path} is in use by another process; stop that one first"
            ) from None
        raise BrokerError(
            f"the sim account file {path} is corrupt ({type(error).__name__}: {error}); "
            "start with --reset-sim for a fresh account"
        ) from None
    if journal_mode != "wal":
        logger.warning("sim account file {} runs in {} mode, not WAL", path, journal_mode)
    return AccountStore(path, db, order_seq, fill_seq), account, created


def _load_or_create(
    db: sqlite3.Connection, path: Path, starting_cash: Decimal
) -> tuple[PaperAccount, bool]:
    # Read the version under the write lock, so two processes opening a new file
    # cannot both create the schema.
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise BrokerError(
                f"the sim account file {path} has schema version {version}, newer than this "
                f"tickdeck understands ({SCHEMA_VERSION}); upgrade tickdeck or start with "
                "--reset-sim for a fresh account"
            )
        if version == 0:
            account = PaperAccount.fresh(starting_cash)
            for statement in (*_SCHEMA_V1, *_SCHEMA_V2):
                db.execute(statement)
            db.execute(
                _INSERT_ACCOUNT,
                (
                    account.account_id,
                    str(account.cash),
                    str(account.last_equity),
                    account.order_seq,
                    account.fill_seq,
                ),
            )
            created = True
        else:
            if version == 1:
                for statement in _SCHEMA_V2:
                    db.execute(statement)
            account = _load(db)
            created = False
        # PRAGMA takes no parameters; SCHEMA_VERSION is a constant int.
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return account, created


def _load(db: sqlite3.Connection) -> PaperAccount:
    rows = db.execute(_SELECT_ACCOUNT).fetchall()
    if len(rows) != 1:
        raise ValueError(f"the account table has {len(rows)} rows, not 1")
    account_id, cash, last_equity, order_seq, fill_seq = rows[0]
    account = PaperAccount(
        account_id=account_id,
        cash=Decimal(cash),
        last_equity=Decimal(last_equity),
        order_seq=decode_int(order_seq),
        fill_seq=decode_int(fill_seq),
    )
    for row in db.execute(_SELECT_POSITIONS):
        position = Position(
            symbol=row[0],
            qty=Decimal(row[1]),
            avg_cost=Decimal(row[2]),
            realized_pnl=Decimal(row[3]),
            fees=Decimal(row[4]),
            last_price=decode_decimal(row[5]),
        )
        account.positions[position.symbol] = position
    for row in db.execute(_SELECT_ORDERS):
        order = order_from_row(row)
        account.orders[order.id] = order
        if order.status.is_open:
            account.working[order.id] = WorkingState(
                triggered=bool(row[_WORKING]), watermark=decode_decimal(row[_WORKING + 1])
            )
    account.fills = [fill_from_row(row) for row in db.execute(_SELECT_FILLS)]
    return account


def _order_row(order: Order, seq: int, state: WorkingState | None) -> tuple:
    """An ``_UPSERT_ORDER`` row: the order's columns, then seq and its working state."""
    triggered, watermark = (False, None) if state is None else (state.triggered, state.watermark)
    return (*order_to_row(order), seq, int(triggered), encode_decimal(watermark))


def _position_row(position: Position) -> tuple:
    return (
        position.symbol,
        str(position.qty),
        str(position.avg_cost),
        str(position.realized_pnl),
        str(position.fees),
        encode_decimal(position.last_price),
    )
