"""Health: feed rate and latency, reconnects, event-loop lag, bus errors, and every component."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widget import Widget

from engine.client import EngineSnapshot
from engine.health import HealthSnapshot, Status
from tui.widgets.format import (
    MUTED,
    Column,
    fmt_ms,
    fmt_rate,
    header_content,
    labelled,
    pack,
    row_content,
)

STALE_AFTER_S = 5.0  # components report every second; five missed beats is worth a look
LAG_WARN_MS = 10.0  # the console's p99 lag budget

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


def _view(health: HealthSnapshot) -> _View:
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
    )


class HealthPane(Widget):
    """Feed msgs/s and latency (n/a for a simulated feed), reconnects, loop lag (worst and p99),
    bus errors, then each component's status and detail (the journal's state among them).

    A component silent for more than five seconds is flagged; heartbeat ages are
    not shown otherwise, so the pane stays still while all is well.
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
        view = _view(snapshot.health)
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
        return Content("\n").join(lines)
