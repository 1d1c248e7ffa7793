"""Today's minute bars per symbol, for the console's chart (bounded: one session)."""

from __future__ import annotations

from collections import deque

from engine.core.bus import MessageBus, Topic
from engine.core.events import SessionEvent, SessionPhase
from engine.core.models import Bar

SESSION_MINUTES = 390


class IntradayBars:
    def __init__(self, bus: MessageBus) -> None:
        self._bars: dict[str, deque[Bar]] = {}
        bus.subscribe(Topic.BAR, self.on_bar)
        bus.subscribe(Topic.SESSION, self.on_session)

    def on_bar(self, bar: Bar) -> None:
        bars = self._bars.get(bar.symbol)
        if bars is None:
            bars = self._bars[bar.symbol] = deque(maxlen=SESSION_MINUTES)
        bars.append(bar)

    def on_session(self, event: SessionEvent) -> None:
        if event.phase is SessionPhase.OPEN:
            self._bars.clear()

    def bars(self, symbol: str) -> list[Bar]:
        return list(self._bars.get(symbol, ()))
