"""``tickdeck data ingest|ls|verify`` against the real S3 test server."""

from __future__ import annotations

import itertools

import pytest

from engine.cli import main
from tests.store.s3server import ACCESS_KEY, SECRET_KEY, free_port

_buckets = itertools.count(1)
SPY = "lean/Data/equity/usa/minute/spy"


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    monkeypatch.setenv("TICKDECK_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("TICKDECK_S3_BUCKET", f"cli-{next(_buckets)}")
    monkeypatch.setenv("TICKDECK_S3_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("TICKDECK_S3_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("TICKDECK_S3_SECURE", "false")
    monkeypatch.setenv("TICKDECK_S3__CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TICKDECK_LOG__DIR", str(tmp_path / "logs"))


def test_ingest_then_ls_shows_each_series_coverage(s3_env, sample_data, capsys):
    assert main(["data", "ingest", str(sample_data / SPY / "20131007_trade.zip")]) == 0
    ingest_out = capsys.readouterr().out
    assert main(["data", "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "ingested 828 rows from 1 files into 1 series" in ingest_out
    assert lines[1].split()[:6] == ["SPY", "bars", "1Min", "2013-10-07", "2013-10-07", "1"]


def test_verify_exits_1_and_names_a_missing_session(s3_env, sample_data, capsys):
    spy = sample_data / SPY
    main(["data", "ingest", str(spy / "20131004_trade.zip"), str(spy / "20131008_trade.zip")])
    capsys.readouterr()
    assert main(["data", "verify"]) == 1
    out = capsys.readouterr().out
    assert "SPY 1Min: no data for the session of 2013-10-07" in out


def test_verify_of_clean_files_exits_0_without_a_store(sample_data, capsys):
    assert main(["data", "verify", str(sample_data / SPY / "20131007_trade.zip")]) == 0
    assert "0 gaps" in capsys.readouterr().out


def test_a_bad_timeframe_is_one_sentence_and_exit_2(s3_env, capsys):
    assert main(["data", "verify", "--timeframe", "2Min"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tickdeck: --timeframe: unknown timeframe '2Min'")
    assert "Traceback" not in err


def test_without_a_configured_store_data_ls_says_how_to_set_one(capsys):
    assert main(["data", "ls"]) == 2
    assert "set s3.endpoint" in capsys.readouterr().err


def test_with_the_store_down_data_ls_is_one_sentence_not_a_traceback(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TICKDECK_S3_ENDPOINT", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("TICKDECK_S3_SECURE", "false")
    monkeypatch.setenv("TICKDECK_S3__CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TICKDECK_LOG__DIR", str(tmp_path / "logs"))
    assert main(["data", "ls"]) == 2
    err = capsys.readouterr().err
    assert "connection refused" in err and "Traceback" not in err


def test_the_s3_secret_key_is_masked_by_config_show(monkeypatch, capsys):
    monkeypatch.setenv("TICKDECK_S3_SECRET_KEY", "very-secret-value")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "very-secret-value" not in out and 'secret_key = "********"' in out
