"""Shared test settings: where the recorded market data lives, and isolation from the user's dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def sample_data_root() -> Path:
    return Path(os.environ.get("TICKDECK_SAMPLE_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def sample_data() -> Path:
    root = sample_data_root()
    if not (root / "lean").is_dir():
        pytest.skip(f"recorded market data not found at {root} (set TICKDECK_SAMPLE_DATA)")
    return root


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Keep tests away from the real config, data and log folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for key in [
        k
        for k in os.environ
        if k.startswith(("TICKDECK_", "APCA_")) and k != "TICKDECK_SAMPLE_DATA"
    ]:
        monkeypatch.delenv(key)
