"""Background WAL checkpoints for the engine's SQLite stores (the journal, the sim venue's account)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from loguru import logger


class WalCheckpointer:
    """Copies the WAL into the database file on a thread of its own.

    A checkpoint fsyncs the WAL and the database file, which takes milliseconds
    (far more on a busy disk); done inside a commit, as SQLite's automatic
    checkpoint would, that stall would land on the order or quote path. The
    thread uses its own connection; sqlite3 releases the GIL while SQLite
    works, and a PASSIVE checkpoint never blocks the writer. It starts at the
    first request, so a short-lived database never starts it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        """Ask for a checkpoint soon; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"checkpoint {self._path.name}", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def stop(self, *, wait: bool = True) -> None:
        """End the thread once a checkpoint under way finishes; ``wait`` for that."""
        self._stopping = True
        self._wake.set()
        if wait and self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(str(self._path), isolation_level=None)
        except sqlite3.Error as error:
            logger.error("{}: cannot open it to checkpoint: {}", self._path, error)
            return
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    # The next request tries again; meanwhile the WAL only grows.
                    logger.warning("{}: checkpoint failed: {}", self._path, error)
        finally:
            db.close()
