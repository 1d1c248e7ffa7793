"""The history store: bars, trades and quotes as versioned Parquet objects in MinIO/S3.

``HistoryStore`` reads and writes them (atomic publish, idempotent re-ingest, a
local LRU cache in front); ``schema`` fixes the columns and the exact price
encoding; ``layout`` the object keys; ``StoreSettings`` is the ``[s3]`` config.

The names are loaded on first use: the config reads ``StoreSettings`` at every
start, and must not pay for pyarrow and the S3 client to do so.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LocalCache": "engine.data.store.cache",
    "Coverage": "engine.data.store.history",
    "Frame": "engine.data.store.history",
    "HistoryStore": "engine.data.store.history",
    "StoredObject": "engine.data.store.history",
    "StoreUnavailable": "engine.data.store.errors",
    "WriteResult": "engine.data.store.history",
    "Series": "engine.data.store.layout",
    "SCHEMA_VERSION": "engine.data.store.schema",
    "TIMEFRAMES": "engine.data.store.schema",
    "Kind": "engine.data.store.schema",
    "StoreSettings": "engine.data.store.settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
