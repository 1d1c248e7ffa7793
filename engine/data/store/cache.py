"""A local read-through cache of store objects: files on disk, a size cap, least recently used out.

The store keeps each object here as its checked, decoded table in Arrow IPC form
(see ``HistoryStore._load``); the cache itself holds bytes and knows nothing of them.

Entries are named by the sha256 of (object key, ETag), so a rewritten object
is a new entry and a stale one can never be served; the old entry just ages
out. Every entry is written to a temporary file and renamed into place, so a
crash never leaves a half-written entry. The cap is in bytes; adding an entry
evicts the least recently used ones until the total fits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from loguru import logger

_ENTRY_SUFFIX = ".arrow"


class LocalCache:
    """Objects by (key, etag), under ``root``, at most ``max_bytes`` in all."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"the cache cap must be zero or more bytes, got {max_bytes}")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._load_index()

    def _load_index(self) -> None:
        """Entries left by an earlier run, oldest use first (file mtime is the last use)."""
        found = []
        for path in self.root.glob(f"*{_ENTRY_SUFFIX}"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                found.append((stat.st_mtime_ns, path.stem, stat.st_size))
        for _, name, size in sorted(found):
            self._entries[name] = size
            self._bytes += size
        self._evict()

    @staticmethod
    def entry_name(key: str, etag: str) -> str:
        return hashlib.sha256(f"{key}\n{etag}".encode()).hexdigest()

    def _path(self, name: str) -> Path:
        return self.root / f"{name}{_ENTRY_SUFFIX}"

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key_etag: tuple[str, str]) -> bool:
        return self.entry_name(*key_etag) in self._entries

    def get(self, key: str, etag: str) -> bytes | None:
        """The cached bytes of ``key`` at ``etag``, marking it recently used; None on a miss."""
        name = self.entry_name(key, etag)
        with self._lock:
            if name not in self._entries:
                self.misses += 1
                return None
            self._entries.move_to_end(name)
        path = self._path(name)
        try:
            data = path.read_bytes()
            os.utime(path)
        except OSError:
            with self._lock:
                self._forget(name)
                self.misses += 1
            return None
        with self._lock:
            self.hits += 1
        return data

    def put(self, key: str, etag: str, data: bytes) -> None:
        """Keep ``data`` for ``key`` at ``etag``; an object larger than the whole cap is not kept."""
        if len(data) > self.max_bytes:
            return
        name = self.entry_name(key, etag)
        path = self._path(name)
        staging = path.with_suffix(f".{threading.get_ident()}.tmp")
        try:
            staging.write_bytes(data)
            os.replace(staging, path)
        except OSError as error:
            staging.unlink(missing_ok=True)
            logger.warning("history cache: cannot write {} ({})", path, error.strerror)
            return
        with self._lock:
            self._forget(name)
            self._entries[name] = len(data)
            self._bytes += len(data)
            self._evict()

    def _forget(self, name: str) -> None:
        size = self._entries.pop(name, None)
        if size is not None:
            self._bytes -= size

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            name, size = self._entries.popitem(last=False)
            self._bytes -= size
            self.evictions += 1
            self._path(name).unlink(missing_ok=True)
