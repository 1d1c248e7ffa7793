"""The daemon as a trader runs it: a subprocess with consoles attaching and detaching, its
health API, its pid file and its signals."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.attach.remote import RemoteClient
from engine.client import Cursor
from engine.core.models import OrderStatus
from engine.health_api import DETAILED_SCHEMA
from tests.conftest import REPO
from tests.daemon.conftest import (
    DaemonProcess,
    eventually,
    get,
    start_daemon,
    stop_daemon,
)

pytestmark = pytest.mark.slow

SIGTERM_BUDGET_S = 15.0  # the daemon aims for 5 s; a loaded 2-core CI box gets slack
VENUE_CONFIRMED = {
    OrderStatus.NEW,
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.DONE_FOR_DAY,
}


async def _orders(client: RemoteClient):
    snapshot = await client.snapshot(Cursor())
    return snapshot.book.orders if snapshot.book is not None else ()


def _run(coroutine):
    return asyncio.run(coroutine)


def test_an_order_placed_from_one_console_shows_in_the_other(daemon: DaemonProcess):
    async def scenario():
        first, second = RemoteClient(daemon.socket), RemoteClient(daemon.socket)
        await first.start()
        await second.start()
        outcome = await first.execute("buy 10 AAPL")

        async def filled_in_second():
            orders = await _orders(second)
            return [o for o in orders if o.id == outcome.order_id and o.status.is_terminal]

        seen = await eventually(filled_in_second)
        await first.stop()
        await second.stop()
        return outcome, seen

    outcome, seen = _run(scenario())
    assert outcome.ok
    assert seen[0].status is OrderStatus.FILLED
    assert seen[0].filled_qty == 10


CONSOLE = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from engine.attach.remote import RemoteClient
    from engine.client import Cursor

    async def main():
        client = RemoteClient(Path(sys.argv[1]))
        cursor = Cursor()
        print("attached", flush=True)
        while True:
            cursor = (await client.snapshot(cursor)).cursor

    asyncio.run(main())
    """
)


def test_a_console_killed_mid_stream_leaves_the_engine_running(daemon: DaemonProcess):
    console = subprocess.Popen(
        [sys.executable, "-c", CONSOLE, str(daemon.socket)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert console.stdout.readline().strip() == b"attached"
    time.sleep(0.5)  # let it pull snapshots for a while
    console.kill()
    console.wait()

    async def after():
        client = RemoteClient(daemon.socket)
        outcome = await client.execute("buy 1 MSFT")
        await client.stop()
        return outcome

    outcome = _run(after())
    status, body = get(f"{daemon.url}/health/components/attach")
    assert outcome.ok
    assert (status, json.loads(body)["status"]) == (200, "ok")
    assert daemon.process.poll() is None


def test_the_detailed_health_matches_its_schema(daemon: DaemonProcess):
    async def trade():
        client = RemoteClient(daemon.socket)
        outcome = await client.execute("buy 5 AAPL")
        await eventually(
            lambda: _filled(client, outcome.order_id),
        )
        await client.stop()

    _run(trade())
    status, body = get(f"{daemon.url}/health/detailed")
    document = json.loads(body)
    jsonschema.validate(document, DETAILED_SCHEMA)
    assert status == 200
    assert document["orders"]["latency"]["fill"]["count"] >= 1
    assert {"daemon", "attach", "feed", "journal"} <= {c["name"] for c in document["components"]}


async def _filled(client: RemoteClient, order_id: str) -> bool:
    return any(o.id == order_id and o.status is OrderStatus.FILLED for o in await _orders(client))


def test_metrics_parse_as_prometheus_exposition(daemon: DaemonProcess):
    status, body = get(f"{daemon.url}/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    statuses = {
        s.labels["component"]: s.value for s in families["tickdeck_component_status"].samples
    }
    all_ok = all(value == 3 for value in statuses.values())
    assert status == 200
    assert families["tickdeck_healthy"].samples[0].value == (1.0 if all_ok else 0.0)
    assert {"feed", "daemon", "attach"} <= set(statuses)
    assert families["tickdeck_memory_rss_bytes"].samples[0].value > 0


def test_the_health_api_is_read_only(daemon: DaemonProcess):
    request = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, urllib.request, urllib.error\n"
            "try:\n"
            f"    urllib.request.urlopen(urllib.request.Request('{daemon.url}/health',"
            " method='POST', data=b'x'))\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code)\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert request.stdout.strip() == "405"


def test_an_unknown_component_is_404_with_a_reason(daemon: DaemonProcess):
    status, body = get(f"{daemon.url}/health/components/nope")
    assert status == 404
    assert json.loads(body) == {"error": "there is no component named 'nope'"}


def test_a_second_daemon_refuses_the_pid_file_of_a_live_one(daemon: DaemonProcess):
    root = daemon.socket.parent.parent
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui",
            "engine",
            "--daemon",
            "--no-health",
            "--data-dir",
            str(root / "data2"),
            "--socket",
            str(root / "run2" / "engine.sock"),
            "--pid-file",
            str(daemon.pid_file),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2
    assert f"an engine is already running (pid {daemon.process.pid}" in second.stderr


def test_sigterm_stops_within_budget_with_the_journal_consistent(sock_dir):
    root = sock_dir
    daemon = start_daemon(root)

    async def place():
        client = RemoteClient(daemon.socket)
        resting = await client.execute("buy 10 AAPL lmt 50 gtc")  # far below: never fills
        market = await client.execute("buy 10 MSFT")
        await eventually(lambda: _filled(client, market.order_id))
        await client.stop()
        return resting

    resting = _run(place())
    started = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    code = daemon.process.wait(timeout=SIGTERM_BUDGET_S)
    waited = time.monotonic() - started
    with sqlite3.connect(daemon.journal()) as db:
        statuses = dict(db.execute("SELECT id, status FROM orders"))
    assert code == 0, daemon.output()
    assert waited < SIGTERM_BUDGET_S
    assert statuses[resting.order_id] == OrderStatus.CANCELED.value  # daemon.on_stop = cancel
    for status in statuses.values():
        parsed = OrderStatus(status)
        assert parsed.is_terminal or parsed in VENUE_CONFIRMED
    assert not daemon.pid_file.exists()
    assert not daemon.socket.exists()


def test_sigterm_keeps_open_orders_when_configured_to(sock_dir):
    root = sock_dir
    config = root / "config.toml"
    config.write_text('[daemon]\non_stop = "keep"\n')
    daemon = start_daemon(root, config=config)

    async def place():
        client = RemoteClient(daemon.socket)
        resting = await client.execute("buy 10 AAPL lmt 50 gtc")

        async def acknowledged():
            orders = await _orders(client)
            return any(o.id == resting.order_id and o.status is OrderStatus.NEW for o in orders)

        await eventually(acknowledged)
        await client.stop()
        return resting

    resting = _run(place())
    daemon.process.send_signal(signal.SIGTERM)
    code = daemon.process.wait(timeout=SIGTERM_BUDGET_S)
    with sqlite3.connect(daemon.journal()) as db:
        (status,) = db.execute(
            "SELECT status FROM orders WHERE id = ?", (resting.order_id,)
        ).fetchone()
    assert code == 0, daemon.output()
    assert status == OrderStatus.NEW.value


def test_sighup_reloads_the_risk_limits(sock_dir):
    root = sock_dir
    config = root / "config.toml"
    config.write_text("[risk]\nmax_order_qty = 1000\n")
    daemon = start_daemon(root, config=config)
    try:
        config.write_text("[risk]\nmax_order_qty = 5\n")
        daemon.process.send_signal(signal.SIGHUP)

        async def rejected():
            client = RemoteClient(daemon.socket)
            outcome = await client.preview("buy 10 AAPL")
            await client.stop()
            return [v.check.value for v in outcome.violations]

        checks = _run(eventually(rejected))
    finally:
        stop_daemon(daemon)
    assert "max_order_qty" in checks
    assert "SIGHUP: logs reopened; reloaded log, risk" in daemon.output()
