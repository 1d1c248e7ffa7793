"""The health API: read-only HTTP on 127.0.0.1:5555 (by default) for monitors and people.

* ``GET /health`` — 200 when every component is ok, else 503 naming the ones that are not.
* ``GET /health/detailed`` — every component with status and heartbeat age, feed msgs/s and
  latency, reconnects, queue depths, event-loop lag, memory, and the order path's latency
  percentiles (``DETAILED_SCHEMA`` is its JSON schema).
* ``GET /health/components/{name}`` — one component (404 with a reason if unknown).
* ``GET /health/alerts`` — components not ok, and the engine's recent warnings.
* ``GET /metrics`` — the same numbers in Prometheus exposition format.

Nothing here changes the engine, and nothing secret is in any answer; any method but
GET (and HEAD) is answered 405.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from loguru import logger
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.core.errors import InputError
from engine.core.events import Severity
from engine.health import ComponentHealth, HealthSnapshot, Status
from engine.node import Engine

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5555
RECENT_ALERTS = 50

_STATUS_VALUE = {Status.DOWN: 0, Status.STARTING: 1, Status.DEGRADED: 2, Status.OK: 3}

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_PERCENTILES = {
    "type": "object",
    "required": ["count", "p50_ms", "p90_ms", "p99_ms"],
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "p50_ms": _NUMBER_OR_NULL,
        "p90_ms": _NUMBER_OR_NULL,
        "p99_ms": _NUMBER_OR_NULL,
    },
}
DETAILED_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "tickdeck /health/detailed",
    "type": "object",
    "required": [
        "status",
        "mode",
        "uptime_s",
        "components",
        "feed",
        "event_loop",
        "queues",
        "memory",
        "orders",
        "bus_errors",
    ],
    "properties": {
        "status": {"enum": ["healthy", "unhealthy"]},
        "mode": {"type": "string"},
        "uptime_s": {"type": "number", "minimum": 0},
        "components": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "status", "detail", "heartbeat_age_s"],
                "properties": {
                    "name": {"type": "string"},
                    "status": {"enum": [s.value for s in Status]},
                    "detail": {"type": "string"},
                    "heartbeat_age_s": {"type": ["number", "null"], "minimum": 0},
                },
            },
        },
        "feed": {
            "type": "object",
            "required": ["msgs_per_s", "latency_ms", "reconnects"],
            "properties": {
                "msgs_per_s": {"type": "number", "minimum": 0},
                "latency_ms": _NUMBER_OR_NULL,
                "reconnects": {"type": "integer", "minimum": 0},
            },
        },
        "event_loop": {
            "type": "object",
            "required": ["lag_ms", "lag_p99_ms"],
            "properties": {
                "lag_ms": {"type": "number", "minimum": 0},
                "lag_p99_ms": {"type": "number", "minimum": 0},
            },
        },
        "queues": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "memory": {
            "type": "object",
            "required": ["rss_bytes"],
            "properties": {"rss_bytes": {"type": "integer", "minimum": 0}},
        },
        "orders": {
            "type": "object",
            "required": ["total", "open", "latency"],
            "properties": {
                "total": {"type": "integer", "minimum": 0},
                "open": {"type": "integer", "minimum": 0},
                "latency": {"type": "object", "additionalProperties": _PERCENTILES},
            },
        },
        "bus_errors": {"type": "integer", "minimum": 0},
    },
}
"""The JSON schema ``/health/detailed`` answers to (draft 2020-12)."""


class HealthApi:
    """Serves ``engine``'s health over HTTP until ``stop()``."""

    def __init__(
        self,
        engine: Engine,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self._wall = wall
        self._started = wall()
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/health/detailed", self._detailed)
        app.router.add_get("/health/components/{name}", self._component)
        app.router.add_get("/health/alerts", self._alerts)
        app.router.add_get("/metrics", self._metrics)
        self._app = app
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(self))

    async def start(self) -> None:
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise InputError(
                f"the health API cannot listen on {self.host}:{self.port}: {error.strerror}"
            ) from None
        self._runner = runner
        bound = runner.addresses[0]
        self.port = bound[1]
        logger.info("health API at http://{}:{}/health", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- readings ---------------------------------------------------------------------------

    def snapshot(self) -> HealthSnapshot:
        self.engine.refresh_health()
        return self.engine.health.snapshot()

    def detailed(self) -> dict[str, Any]:
        """The ``/health/detailed`` document."""
        health = self.snapshot()
        orders = self.engine.oms.orders()
        return {
            "status": "healthy" if health.healthy else "unhealthy",
            "mode": self.engine.settings.mode.value,
            "uptime_s": max(0.0, self._wall() - self._started),
            "components": [_component(c) for c in health.components],
            "feed": {
                "msgs_per_s": health.feed_msgs_per_s,
                "latency_ms": health.feed_latency_ms,
                "reconnects": health.reconnects,
            },
            "event_loop": {"lag_ms": health.loop_lag_ms, "lag_p99_ms": health.loop_lag_p99_ms},
            "queues": {q.name: q.depth for q in health.queues},
            "memory": {"rss_bytes": health.memory_rss_bytes},
            "orders": {
                "total": len(orders),
                "open": sum(1 for o in orders if o.is_open),
                "latency": {
                    s.stage: {
                        "count": s.count,
                        "p50_ms": s.p50_ms,
                        "p90_ms": s.p90_ms,
                        "p99_ms": s.p99_ms,
                    }
                    for s in health.order_latency
                },
            },
            "bus_errors": health.bus_errors,
        }

    # -- handlers ---------------------------------------------------------------------------

    async def _health(self, _request: web.Request) -> web.Response:
        health = self.snapshot()
        failing = [c.name for c in health.components if c.status is not Status.OK]
        body = {"status": "healthy" if not failing else "unhealthy", "failing": failing}
        return web.json_response(body, status=200 if not failing else 503)

    async def _detailed(self, _request: web.Request) -> web.Response:
        return web.json_response(self.detailed())

    async def _component(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        for component in self.snapshot().components:
            if component.name == name:
                return web.json_response(_component(component))
        return web.json_response({"error": f"there is no component named '{name}'"}, status=404)

    async def _alerts(self, _request: web.Request) -> web.Response:
        health = self.snapshot()
        alerts = [a for a in self.engine.alerts if a.severity is not Severity.INFO]
        return web.json_response(
            {
                "components": [
                    _component(c) for c in health.components if c.status is not Status.OK
                ],
                "alerts": [
                    {
                        "ts_ns": a.ts_ns,
                        "severity": a.severity.value,
                        "message": a.message,
                        "source": a.source,
                    }
                    for a in alerts[-RECENT_ALERTS:]
                ],
            }
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _component(c: ComponentHealth) -> dict[str, Any]:
    return {
        "name": c.name,
        "status": c.status.value,
        "detail": c.detail,
        "heartbeat_age_s": c.heartbeat_age_s,
    }


class _Collector:
    """Reads one health snapshot per scrape and turns it into gauges."""

    def __init__(self, api: HealthApi) -> None:
        self._api = api

    def collect(self) -> Iterator[GaugeMetricFamily]:
        detailed = self._api.detailed()
        health_up = GaugeMetricFamily("tickdeck_healthy", "1 when every component is ok, else 0")
        health_up.add_metric([], 1 if detailed["status"] == "healthy" else 0)
        yield health_up
        component = GaugeMetricFamily(
            "tickdeck_component_status",
            "component status: 3 ok, 2 degraded, 1 starting, 0 down",
            labels=["component"],
        )
        age = GaugeMetricFamily(
            "tickdeck_component_heartbeat_age_seconds",
            "seconds since the component last reported",
            labels=["component"],
        )
        for c in detailed["components"]:
            component.add_metric([c["name"]], _STATUS_VALUE[Status(c["status"])])
            if c["heartbeat_age_s"] is not None:
                age.add_metric([c["name"]], c["heartbeat_age_s"])
        yield component
        yield age
        feed = detailed["feed"]
        yield _gauge(
            "tickdeck_feed_messages_per_second",
            "market data messages per second",
            feed["msgs_per_s"],
        )
        if feed["latency_ms"] is not None:
            yield _gauge("tickdeck_feed_latency_ms", "market data latency", feed["latency_ms"])
        yield _gauge("tickdeck_feed_reconnects", "market data reconnects", feed["reconnects"])
        loop = detailed["event_loop"]
        yield _gauge(
            "tickdeck_event_loop_lag_ms", "worst event-loop lag in the last 10 s", loop["lag_ms"]
        )
        yield _gauge("tickdeck_event_loop_lag_p99_ms", "p99 event-loop lag", loop["lag_p99_ms"])
        yield _gauge(
            "tickdeck_memory_rss_bytes", "resident memory", detailed["memory"]["rss_bytes"]
        )
        yield _gauge("tickdeck_bus_errors", "bus handler errors", detailed["bus_errors"])
        queues = GaugeMetricFamily("tickdeck_queue_depth", "queue depth", labels=["queue"])
        for name, depth in detailed["queues"].items():
            queues.add_metric([name], depth)
        yield queues
        orders = detailed["orders"]
        yield _gauge("tickdeck_orders", "orders known this session", orders["total"])
        yield _gauge("tickdeck_orders_open", "orders working now", orders["open"])
        latency = GaugeMetricFamily(
            "tickdeck_order_latency_ms",
            "order path latency by stage and percentile",
            labels=["stage", "quantile"],
        )
        for stage, p in orders["latency"].items():
            for quantile, key in (("0.5", "p50_ms"), ("0.9", "p90_ms"), ("0.99", "p99_ms")):
                if p[key] is not None:
                    latency.add_metric([stage, quantile], p[key])
        yield latency


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
