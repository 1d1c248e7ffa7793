"""The store tests' S3 server: moto's server mode on loopback, started once per session."""

from __future__ import annotations

import itertools

import pytest

from engine.data.store import HistoryStore, LocalCache, StoreSettings
from tests.alpaca.conftest import alpaca_server_factory  # noqa: F401 (the local Alpaca server)
from tests.store.s3server import ACCESS_KEY, SECRET_KEY, S3Server, start_s3_server

_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def s3_server():
    try:
        server = start_s3_server()
    except RuntimeError as error:
        pytest.fail(f"cannot start the S3 test server (is moto[server] installed?): {error}")
    yield server
    server.stop()


def store_settings(server: S3Server, bucket: str, **extra) -> StoreSettings:
    return StoreSettings(
        endpoint=server.endpoint,
        bucket=bucket,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        region="us-east-1",
        **extra,
    )


@pytest.fixture
def store(s3_server, tmp_path):
    """A store over its own fresh bucket, with its own cache folder."""
    settings = store_settings(s3_server, f"test-{next(_buckets)}", cache_dir=str(tmp_path / "c"))
    history = HistoryStore(settings, cache=LocalCache(tmp_path / "cache", 64 * 1024 * 1024))
    history.ensure_bucket()
    yield history
    history.close()
