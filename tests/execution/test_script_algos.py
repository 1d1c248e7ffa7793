"""Algo lines in headless order scripts."""

from __future__ import annotations

from engine.orders.script import OrderScript, Outcome
from tests.execution.harness import Desk, config


def test_a_script_starts_pauses_and_cancels_an_algo(tmp_path):
    desk = Desk(tmp_path, config=config())
    desk.quote("10.00", "10.02")
    lines = ["buy 1000 XYZ twap 10m", "pause algo-1", "cancel algo-1", "resume algo-1"]
    script = OrderScript(desk.oms, desk.market, lines, execution=desk.service)
    script.pump()
    assert [(r.outcome, r.message) for r in script.results] == [
        (Outcome.DONE, "algo-1 started: buy 1000 XYZ twap"),
        (Outcome.DONE, "algo-1 paused"),
        (Outcome.DONE, "algo-1 canceled"),
        (Outcome.REJECTED, "algo-1 is canceled, not paused"),
    ]


def test_a_script_without_the_execution_service_refuses_algo_lines(tmp_path):
    desk = Desk(tmp_path, config=config())
    desk.quote("10.00", "10.02")
    script = OrderScript(desk.oms, desk.market, ["buy 1000 XYZ pov 5%"])
    script.pump()
    assert [(r.outcome, r.message) for r in script.results] == [
        (Outcome.REJECTED, "algos are not available in this run")
    ]
