"""`tickdeck engine` end to end: real subprocesses, real sim market, venue, risk, OMS and journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

D = Decimal


def run_tickdeck(
    *args: str, tmp_path: Path, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = os.environ | {"TICKDECK_LOG__DIR": str(tmp_path / "logs")}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def engine_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "engine", "--mode", "sim", "--seed", "11", "--speed", "0", "--start", "2024-03-15",
        "--symbols", "AAPL,MSFT,NVDA,BAC", "--data-dir", str(tmp_path / "data"), "--reset-sim", *extra,
    ]  # fmt: skip


def test_orders_file_is_submitted_in_order_and_reported(tmp_path):
    orders = tmp_path / "orders.txt"
    orders.write_text(
        "# buy, add, trim, a bad line, a rejection and a resting order\n"
        "buy 100 AAPL\n"
        "buy 50 aapl\n"
        "sell 30 AAPL\n"
        "bux 10 AAPL\n"
        "buy 1000000 MSFT\n"
        "buy 10 NVDA lmt 1.00 gtc\n"
    )
    report_path = tmp_path / "report.json"
    result = run_tickdeck(
        *engine_args(tmp_path, "--orders", str(orders), "--report", str(report_path)),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(report_path.read_text())

    outcomes = [(row["number"], row["outcome"]) for row in report["script"]]
    assert outcomes == [
        (2, "accepted"),
        (3, "accepted"),
        (4, "accepted"),
        (5, "error"),
        (6, "rejected"),
        (7, "accepted"),
    ]
    assert "'bux'" in report["script"][3]["message"]
    assert report["risk_rejections"][0]["symbol"] == "MSFT"
    assert "max_order_qty" in report["risk_rejections"][0]["checks"]

    by_symbol = {p["symbol"]: p for p in report["positions"]}
    assert D(by_symbol["AAPL"]["qty"]) == 120
    aapl_fills = [f for f in report["fills"] if f["symbol"] == "AAPL"]
    signed = sum(D(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in aapl_fills)
    assert signed == 120

    # Average cost and realized P&L recomputed by hand from the reported fills (average-cost method).
    qty, avg, realized = D(0), D(0), D(0)
    for fill in aapl_fills:
        q, p = D(fill["qty"]), D(fill["price"])
        if fill["side"] == "buy":
            avg = (avg * qty + p * q) / (qty + q)
            qty += q
        else:
            realized += (p - avg) * q
            qty -= q
    assert D(by_symbol["AAPL"]["avg_cost"]) == avg
    assert D(by_symbol["AAPL"]["realized_pnl"]) == realized

    statuses = {o["symbol"]: o["status"] for o in report["orders"] if o["symbol"] == "NVDA"}
    # Not filled at $1.00; cancelled at exit because cancel_on_exit is the default.
    assert statuses == {"NVDA": "canceled"}


def test_orders_from_stdin(tmp_path):
    report_path = tmp_path / "report.json"
    result = run_tickdeck(
        *engine_args(tmp_path, "--orders", "-", "--report", str(report_path)),
        tmp_path=tmp_path,
        stdin="buy 10 MSFT\nsell 10 MSFT\n",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert [row["outcome"] for row in report["script"]] == ["accepted", "accepted"]
    assert {p["symbol"]: D(p["qty"]) for p in report["positions"]}.get("MSFT", D(0)) == 0


def test_demo_shows_fills_a_partial_fill_a_cancel_and_a_rejection(tmp_path):
    report_path = tmp_path / "report.json"
    result = run_tickdeck(
        *engine_args(tmp_path, "--demo", "--report", str(report_path)), tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    statuses = [o["status"] for o in report["orders"]]
    assert "filled" in statuses
    assert "canceled" in statuses
    partial = [o for o in report["orders"] if o["symbol"] == "BAC"]
    assert partial and D(partial[0]["filled_qty"]) > 0
    assert D(partial[0]["filled_qty"]) < D(partial[0]["qty"])
    assert report["risk_rejections"], "the demo must show a risk rejection"


def test_bad_config_value_names_the_key_and_exits_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[risk]\nmax_order_qty = 'lots'\n")
    result = run_tickdeck("--config", str(config), "config", "show", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "risk.max_order_qty" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_show_masks_secrets(tmp_path):
    env_secret = "SECRETSECRETSECRET1234"
    env = {"APCA_API_KEY_ID": "PKABCDEFGHIJ1234", "APCA_API_SECRET_KEY": env_secret}
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "config", "show"],
        capture_output=True, text=True, timeout=60, env=os.environ | env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert env_secret not in result.stdout
    assert "PKABCDEFGHIJ1234" not in result.stdout


def test_missing_replay_data_is_one_sentence(tmp_path):
    result = run_tickdeck(
        "engine", "--mode", "replay", "--data", str(tmp_path / "nope"), tmp_path=tmp_path
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("tickdeck: ")


def test_replay_of_a_real_lean_day_runs_headless(tmp_path, sample_data):
    report_path = tmp_path / "report.json"
    result = run_tickdeck(
        "engine", "--data", str(sample_data / "lean" / "Data"), "--symbols", "SPY", "--speed", "0",
        "--data-dir", str(tmp_path / "data"), "--report", str(report_path), tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["mode"] == "replay"
    assert report["feed"]["bars"] >= 390
