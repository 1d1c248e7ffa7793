"""The health API in process: 200 or 503 with the failing components, alerts, one component."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jsonschema
import pytest
import pytest_asyncio

from engine.health_api import DETAILED_SCHEMA, HealthApi
from engine.node import Engine
from tests.tui.conftest import WARM_UP, deterministic_engine, step


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Engine, str]]:
    engine = deterministic_engine(tmp_path)
    await engine.start()
    step(engine, WARM_UP)
    api = HealthApi(engine, "127.0.0.1", 0)
    await api.start()
    yield engine, f"http://127.0.0.1:{api.port}"
    await api.stop()
    await engine.stop(cancel_open=False)


async def _get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, json.loads(await answer.text())


@pytest.mark.asyncio
async def test_health_is_200_when_every_component_is_ok(served):
    _, url = served
    assert await _get(f"{url}/health") == (200, {"status": "healthy", "failing": []})


@pytest.mark.asyncio
async def test_health_is_503_naming_the_component_that_is_not_ok(served):
    engine, url = served
    engine.oms.kill("by the trader")
    assert await _get(f"{url}/health") == (503, {"status": "unhealthy", "failing": ["risk"]})


@pytest.mark.asyncio
async def test_alerts_list_the_failing_components_and_recent_warnings(served):
    engine, url = served
    engine.oms.kill("by the trader")
    status, body = await _get(f"{url}/health/alerts")
    assert status == 200
    assert [c["name"] for c in body["components"]] == ["risk"]
    assert body["components"][0]["detail"] == "kill switch engaged"
    assert any("kill switch" in a["message"] for a in body["alerts"])


@pytest.mark.asyncio
async def test_one_component_by_name(served):
    _, url = served
    status, body = await _get(f"{url}/health/components/journal")
    assert status == 200
    assert (body["name"], body["status"], body["detail"]) == ("journal", "ok", "journal-sim.sqlite")


@pytest.mark.asyncio
async def test_the_detailed_document_of_a_fresh_engine_matches_the_schema(served):
    _, url = served
    status, body = await _get(f"{url}/health/detailed")
    jsonschema.validate(body, DETAILED_SCHEMA)
    assert status == 200
    assert body["orders"] == {
        "total": 0,
        "open": 0,
        "latency": {
            stage: {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None}
            for stage in ("decision", "risk", "submit", "ack", "fill", "total")
        },
    }


@pytest.mark.asyncio
async def test_a_write_is_refused_with_405(served):
    _, url = served
    async with aiohttp.ClientSession() as session:
        for method in ("POST", "PUT", "DELETE"):
            async with session.request(method, f"{url}/health") as answer:
                assert answer.status == 405
