"""Health: feed rate and latency, reconnects, event-loop lag, bus errors, every component,
and the selected order's latency, stage by stage."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widget import Widget

from engine.client import EngineSnapshot
from engine.health import HealthSnapshot, Status
from engine.latency import OrderLatency
from tui.widgets.blotter import Blotter
from tui.widgets.format import (
    MUTED,
    Column,
    fmt_ms,
    fmt_order_id,
    fmt_rate,
    header_content,
    labelled,
    pack,
    row_content,
)

STALE_AFTER_S = 5.0  # components report every second; five missed beats is worth a look
LAG_WARN_MS = 10.0  # the console's p99 lag budget
LATENCY_ROWS = 3  # the order-latency section: a title, the order's stages, the percentiles

STATUS_STYLES = {
    Status.OK: "$success",
    Status.DEGRADED: "$warning",
    Status.DOWN: "bold $error",
    Status.STARTING: MUTED,
}

COLUMNS = (
    Column("name", "COMPONENT", 10, left=True),
    Column("status", "STATUS", 10, left=True),
    Column("detail", "DETAIL", 60, left=True),
)


@dataclass(slots=True, frozen=True)
class _ComponentLine:
    name: str
    status: Status
    detail: str
    stale: bool


@dataclass(slots=True, frozen=True)
class _View:
    """What the pane shows, already rounded: equal views mean nothing to repaint."""

    rate: str
    latency: str
    reconnects: int
    lag_worst: str
    lag_p99: str
    lag_warn: bool
    bus_errors: int
    components: tuple[_ComponentLine, ...]
    order: str = ""  # the selected (else newest) order's stages, "" before any order
    percentiles: str = ""


def _stages(record: OrderLatency) -> str:
    """``#5 decision 0.0 · risk 0.0 · submit 0.0 · ack 5.0 · fill 5.0 · total 5.0 ms``."""
    parts = [
        f"{stage} {'--' if ms is None else f'{ms:,.1f}'}"
        for stage, ms in record.stages_ms().items()
    ]
    total = record.total_ms()
    parts.append(f"total {'--' if total is None else f'{total:,.1f}'} ms")
    return f"{fmt_order_id(record.order_id)}  " + " · ".join(parts)


def _percentiles(health: HealthSnapshot) -> str:
    """p50/p99 of the whole path and of the broker's acknowledgement."""
    stats = {s.stage: s for s in health.order_latency}
    parts = []
    for stage in ("total", "ack", "fill"):
        stat = stats.get(stage)
        if stat is not None and stat.count:
            parts.append(f"{stage} {fmt_ms(stat.p50_ms)} / {fmt_ms(stat.p99_ms)}")
    return ("p50 / p99  " + " · ".join(parts)) if parts else ""


def _view(health: HealthSnapshot, selected: str | None = None) -> _View:
    record = health.order(selected) if selected is not None else None
    if record is None and health.recent_orders:
        record = health.recent_orders[0]
    return _View(
        rate=fmt_rate(health.feed_msgs_per_s),
        latency=fmt_ms(health.feed_latency_ms),
        reconnects=health.reconnects,
        lag_worst=fmt_ms(health.loop_lag_ms),
        lag_p99=fmt_ms(health.loop_lag_p99_ms),
        lag_warn=health.loop_lag_p99_ms > LAG_WARN_MS,
        bus_errors=health.bus_errors,
        components=tuple(
            _ComponentLine(
                c.name,
                c.status,
                c.detail,
                c.heartbeat_age_s is not None and c.heartbeat_age_s > STALE_AFTER_S,
            )
            for c in health.components
        ),
        order=_stages(record) if record is not None else "",
        percentiles=_percentiles(health),
    )


class HealthPane(Widget):
    """Feed msgs/s and latency (n/a for a simulated feed), reconnects, loop lag (worst and p99),
    bus errors, then each component's status and detail (the journal's state among them).

    A component silent for more than five seconds is flagged; heartbeat ages are
    not shown otherwise, so the pane stays still while all is well. Below, where the
    pane has the rows for it, the order path's latency: the blotter's selected order
    (else the newest) stage by stage, market event to fill, and p50/p99 over recent orders.
    """

    DEFAULT_CSS = """
    HealthPane {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    # Per-instance state (assigned on the instance); these are the initial values.
    _view: _View | None = None

    def apply(self, snapshot: EngineSnapshot) -> None:
        """Take the health readings; repaint only when their rounded values changed."""
        blotters = self.screen.query(Blotter)
        selected = blotters.first().selected_order if blotters else None
        view = _view(snapshot.health, selected.id if selected is not None else None)
        if view != self._view:
            self._view = view
            self.refresh()

    def render(self) -> Content:
        view = self._view
        if view is None:
            return Content.styled("waiting for health", MUTED)
        warn = "$warning"
        metrics = [
            labelled("feed", view.rate),
            labelled("latency", view.latency),
            labelled("reconnects", str(view.reconnects), warn if view.reconnects else ""),
            labelled("loop lag", f"{view.lag_worst} worst", warn if view.lag_warn else ""),
            labelled("p99", view.lag_p99, warn if view.lag_warn else ""),
            labelled("bus errors", str(view.bus_errors), "bold $error" if view.bus_errors else ""),
        ]
        width = self.size.width
        lines = pack(metrics, width)
        lines.append(header_content(COLUMNS))
        for component in view.components:
            detail = component.detail
            if component.stale:
                detail = f"silent for more than {STALE_AFTER_S:.0f}s · {detail}".rstrip(" ·")
            lines.append(
                row_content(
                    [
                        (COLUMNS[0], component.name, "bold"),
                        (
                            COLUMNS[1],
                            f"● {component.status.value}",
                            STATUS_STYLES[component.status],
                        ),
                        (COLUMNS[2], detail, "$warning" if component.stale else ""),
                    ]
                )
            )
        # Only where it fits below the components: the pane's health lines come first.
        if view.order and self.size.height - len(lines) >= LATENCY_ROWS:
            lines.append(Content.styled("ORDER LATENCY (ms)", f"bold {MUTED}"))
            lines.append(Content(view.order))
            lines.append(Content.styled(view.percentiles, MUTED))
        return Content("\n").join(lines)
