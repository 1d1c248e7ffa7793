"""Fault injection for the local Alpaca server: each method is one misbehaviour, on demand.

Streams are named ``"data"`` (market data: ``/v2/iex``, ``/v2/sip``, the
option feeds) and ``"trading"`` (``/stream``); ``"all"`` means both where a
method accepts it. ``apply`` is the same API as JSON, for ``POST /_faults``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.core.errors import InputError

STREAMS = ("data", "trading")

HTTP_FAULT_BODIES: dict[int, tuple[int, str]] = {
    403: (40310000, "forbidden"),
    422: (42210000, "unprocessable entity"),
    429: (42910000, "rate limit exceeded"),
    500: (50010000, "internal server error"),
    503: (50310000, "service unavailable"),
}
"""Alpaca's ``{"code", "message"}`` body for each HTTP status ``http_error`` can answer."""


class FaultTarget(Protocol):
    """What a stream hub lets the injector do to its connections."""

    def drop_all(self) -> int: ...

    def silence(self, seconds: float) -> int: ...

    def malformed(self, count: int) -> None: ...


@dataclass(slots=True)
class HttpFault:
    status: int
    remaining: int
    path_prefix: str | None


@dataclass(slots=True)
class FaultInjector:
    """Misbehaviours of the local Alpaca server, switched on by tests or ``POST /_faults``."""

    targets: dict[str, FaultTarget] = field(default_factory=dict)
    http_faults: list[HttpFault] = field(default_factory=list)
    auth_rejections: dict[str, list[int]] = field(default_factory=dict)
    duplicate_updates: bool = False
    reorder_updates: bool = False
    sip_forbidden: bool = False
    max_symbols: int | None = None

    def drop_connections(self, stream: str = "all") -> int:
        """Cut every open socket of ``stream`` at once (no close frame); returns how many."""
        return sum(self.targets[name].drop_all() for name in _streams(stream, allow_all=True))

    def go_silent(self, stream: str, seconds: float) -> int:
        """Keep ``stream``'s open sockets open but send nothing on them for ``seconds``.

        Whatever would have been sent meanwhile is lost, as on a half-dead
        connection; sockets opened later are not affected. Returns how many.
        """
        if seconds < 0:
            raise InputError(f"silence lasts 0 seconds or more, not {seconds}")
        return sum(self.targets[name].silence(seconds) for name in _streams(stream, allow_all=True))

    def reject_auth(self, stream: str, code: int, *, count: int = 1) -> None:
        """Answer the next ``count`` authentications on ``stream`` with error ``code``.

        On the data stream the answer is Alpaca's error message for the code
        (402 auth failed, 406 connection limit exceeded, ...) and the socket
        closes; on the trading stream it is ``unauthorized``.
        """
        for name in _streams(stream, allow_all=False):
            self.auth_rejections.setdefault(name, []).extend([code] * count)

    def take_auth_rejection(self, stream: str) -> int | None:
        """The code to refuse this authentication with, if a rejection is pending."""
        pending = self.auth_rejections.get(stream)
        return pending.pop(0) if pending else None

    def http_error(self, status: int, *, count: int = 1, path_prefix: str | None = None) -> None:
        """Answer the next ``count`` REST requests (under ``path_prefix``, if given) with ``status``.

        Websocket upgrades are affected only when ``path_prefix`` names their path.
        """
        if status not in HTTP_FAULT_BODIES:
            known = ", ".join(str(s) for s in HTTP_FAULT_BODIES)
            raise InputError(f"http_error answers {known}, not {status}")
        if count < 1:
            raise InputError(f"http_error needs a count of 1 or more, not {count}")
        self.http_faults.append(HttpFault(status, count, path_prefix))

    def take_http_error(self, path: str, *, upgrade: bool) -> int | None:
        """The status to answer ``path`` with, consuming one pending fault, or None."""
        for fault in self.http_faults:
            if fault.path_prefix is None:
                if upgrade:
                    continue
            elif not path.startswith(fault.path_prefix):
                continue
            fault.remaining -= 1
            if fault.remaining == 0:
                self.http_faults.remove(fault)
            return fault.status
        return None

    def malformed_frames(self, stream: str, count: int) -> None:
        """Send ``count`` frames that do not decode on ``stream`` (to every open socket, else to
        the next that authenticates), ahead of the real messages, which still follow."""
        for name in _streams(stream, allow_all=False):
            self.targets[name].malformed(count)

    def duplicate_trade_updates(self, on: bool) -> None:
        """Send every ``trade_updates`` message twice."""
        self.duplicate_updates = on

    def reorder_trade_updates(self, on: bool) -> None:
        """Swap consecutive ``trade_updates`` messages (a lone one goes out after a short wait)."""
        self.reorder_updates = on

    def forbid_sip(self, on: bool) -> None:
        """Answer authentication on ``/v2/sip`` with 409 insufficient subscription."""
        self.sip_forbidden = on

    def symbol_limit(self, n: int | None) -> None:
        """Refuse (405) a subscription that would exceed ``n`` trade/quote symbols; None lifts it."""
        self.max_symbols = n

    def clear(self) -> None:
        """Switch every fault off (sockets already silenced stay silent until their time is up)."""
        self.http_faults.clear()
        self.auth_rejections.clear()
        self.duplicate_updates = self.reorder_updates = self.sip_forbidden = False
        self.max_symbols = None

    def apply(self, request: dict[str, Any]) -> Any:
        """Run one fault from JSON: ``{"fault": "<method name>", <its arguments>...}``."""
        name = request.get("fault")
        arguments = {k: v for k, v in request.items() if k != "fault"}
        if name not in _PUBLIC:
            raise InputError(f"unknown fault {name!r}; known: {', '.join(sorted(_PUBLIC))}")
        try:
            return getattr(self, name)(**arguments)
        except TypeError as error:
            raise InputError(f"bad arguments for fault {name}: {error}") from None


_PUBLIC = frozenset(
    {
        "drop_connections",
        "go_silent",
        "reject_auth",
        "http_error",
        "malformed_frames",
        "duplicate_trade_updates",
        "reorder_trade_updates",
        "forbid_sip",
        "symbol_limit",
        "clear",
    }
)


def _streams(stream: str, *, allow_all: bool) -> tuple[str, ...]:
    if stream in STREAMS:
        return (stream,)
    if allow_all and stream == "all":
        return STREAMS
    choices = '"data", "trading"' + (' or "all"' if allow_all else "")
    raise InputError(f'stream must be {choices}, not "{stream}"')
