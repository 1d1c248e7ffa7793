"""`tickdeck engine --bot ...`: bots run headless; the exit report lists their performance and advice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_tickdeck(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"TICKDECK_LOG__DIR": str(tmp_path / "logs")}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def engine_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "engine", "--seed", "3", "--speed", "0", "--start", "2024-03-15", "--duration", "7200",
        "--symbols", "AAPL,MSFT", "--data-dir", str(tmp_path / "data"), "--reset-sim", *extra,
    ]  # fmt: skip


def test_bots_run_headless_and_the_report_has_their_performance_and_advice(tmp_path):
    report_path = tmp_path / "report.json"
    result = run_tickdeck(
        *engine_args(
            tmp_path,
            "--bot", "momentum:auto:fast=3,slow=8",
            "--bot", "mean_reversion:advise:symbols=AAPL+MSFT,window=20",
            "--report", str(report_path),
        ),
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    bots = {bot["name"]: bot for bot in report["bots"]}
    assert [(b["kind"], b["mode"], b["state"]) for b in bots.values()] == [
        ("momentum", "auto", "running"),
        ("mean_reversion", "advise", "running"),
    ]
    momentum = bots["momentum"]["performance"]
    bot_orders = [o for o in report["orders"] if o["source"] == "bot:momentum"]
    assert bot_orders, "momentum in auto mode should have placed orders"
    bot_fills = [f for f in report["fills"] if f["order_id"] in {o["id"] for o in bot_orders}]
    assert momentum["trades"] == len(bot_fills)
    advised = report["advised"]
    assert advised and {a["bot"] for a in advised} == {"mean_reversion"}
    assert not [o for o in report["orders"] if o["source"] == "bot:mean_reversion"]
    assert "bot momentum (momentum, running/auto): realized" in result.stderr
    assert "opportunities advised (listed in the report)" in result.stderr


def test_a_bad_bot_spec_is_one_sentence_and_exit_status_2(tmp_path):
    result = run_tickdeck(*engine_args(tmp_path, "--bot", "momentm:auto"), tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tickdeck: config: bots.run: 'momentm' is not a bot; the bots are momentum,"
        " mean_reversion, breakout, pairs, ml, options (from the command line)"
    )


def test_a_bad_bot_parameter_is_one_sentence_and_exit_status_2(tmp_path):
    result = run_tickdeck(
        *engine_args(tmp_path, "--bot", "momentum:auto:fast=9,slow=5"), tmp_path=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "tickdeck: momentum bot: fast (9) must be at least 1 and below slow (5)."
    )
    assert "Traceback" not in result.stderr
