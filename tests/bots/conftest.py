"""A deterministic sim engine for the bot service tests, and a bot the tests drive by hand."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from engine.bots.api import Bot, Opportunity
from engine.core.models import Quote, Side
from engine.node import Engine
from tests.tui.conftest import deterministic_engine

WARM_UP = 300


class HandBot(Bot):
    """Does nothing on its own: a test calls ``propose`` and reads what came back."""

    kind = "hand"

    def propose(self, side: Side, qty: int, symbol: str = "AAPL", *, cross: bool = True):
        """An opportunity at the touch it would trade against (``cross``) or far from it."""
        quote = self.ctx.quote(symbol)
        assert quote is not None
        if cross:
            limit = quote.ask if side is Side.BUY else quote.bid
        else:
            limit = (quote.bid * Decimal("0.9")).quantize(Decimal("0.01"))
        return self.ctx.emit(
            Opportunity(
                symbol, side, Decimal(qty), limit, 0.7, "test", self.ctx.clock.now_ns() + 60 * 10**9
            )
        )


class QuoteRaiser(HandBot):
    """Raises on the first quote it sees."""

    kind = "raiser"

    def on_quote(self, quote: Quote) -> None:
        raise ZeroDivisionError("division by zero")


class TimerRaiser(HandBot):
    """Raises when its timer fires."""

    kind = "timer_raiser"

    def on_timer(self, name: str) -> None:
        raise RuntimeError(f"boom in {name}")


def step(engine: Engine, events: int) -> None:
    for _ in range(events):
        engine.driver.step()


def start(engine: Engine) -> None:
    asyncio.run(engine.start())
    step(engine, WARM_UP)


def stop(engine: Engine) -> None:
    asyncio.run(engine.stop(cancel_open=True))


@pytest.fixture
def engine_for(tmp_path: Path):
    """``engine_for(**settings)``: an engine not yet started; stopped after the test if started."""
    built: list[Engine] = []

    def build(**overrides: object) -> Engine:
        engine = deterministic_engine(tmp_path, **overrides)
        built.append(engine)
        return engine

    yield build
    for engine in built:
        if engine.oms.ready:
            stop(engine)
