"""A `kill -9` in the middle of a session loses no acknowledged order or fill."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from engine.journal import Journal

pytestmark = pytest.mark.slow


def acknowledged(journal_path: Path) -> tuple[dict[str, str], set[str]]:
    """Orders past pending_new and fill ids, read straight from the journal file."""
    if not journal_path.exists():
        return {}, set()
    try:
        journal = Journal(journal_path)
    except sqlite3.Error:
        return {}, set()
    try:
        orders = {
            o.id: o.status.value for o in journal.load_orders() if o.status.value != "pending_new"
        }
        fills = {f.id for f in journal.load_fills()}
    finally:
        journal.close()
    return orders, fills


def test_sigkill_mid_session_then_restart_recovers_every_order_and_fill(tmp_path):
    data_dir = tmp_path / "data"
    env = os.environ | {"TICKDECK_LOG__DIR": str(tmp_path / "logs")}
    common = [
        "--mode",
        "sim",
        "--seed",
        "5",
        "--start",
        "2024-03-15",
        "--symbols",
        "AAPL,MSFT",
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "engine", *common, "--speed", "20", "--orders", "-", "--reset-sim"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines = [
        "buy 100 AAPL",
        "buy 50 MSFT",
        "buy 10 AAPL lmt 1.00 gtc",
        "sell 40 AAPL",
        "buy 5 MSFT lmt 2.00 gtc",
        "buy 25 MSFT",
    ]
    assert proc.stdin is not None
    for line in lines:
        proc.stdin.write(line + "\n")
    proc.stdin.flush()

    journal_path = data_dir / "journal-sim.sqlite"
    deadline = time.monotonic() + 60
    before_orders: dict[str, str] = {}
    before_fills: set[str] = set()
    while time.monotonic() < deadline:
        before_orders, before_fills = acknowledged(journal_path)
        if len(before_orders) == len(lines) and len(before_fills) >= 4:
            break
        time.sleep(0.2)
    assert len(before_orders) == len(lines), "the engine never acknowledged every order"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # What the journal holds after the kill is what was acknowledged before it.
    before_orders, before_fills = acknowledged(journal_path)

    report_path = tmp_path / "after.json"
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "engine", *common, "--speed", "0", "--duration", "1", "--keep-open", "--report", str(report_path)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())

    after_orders = {o["id"]: o for o in report["orders"]}
    after_fills = {f["id"] for f in report["fills"]}
    assert set(before_orders) <= set(after_orders)
    assert before_fills <= after_fills
    resting = [o for o in after_orders.values() if o["limit_price"] in ("1.00", "2.00")]
    assert {o["status"] for o in resting} == {"new"}, (
        "resting GTC orders survive the crash, still working"
    )

    positions = {p["symbol"]: Decimal(p["qty"]) for p in report["positions"]}
    assert positions.get("AAPL") == Decimal(60)
    assert positions.get("MSFT") == Decimal(75)
