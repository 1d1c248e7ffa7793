"""The bot service in a running sim engine: budgets, global risk, isolation, the queue, restarts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.bots.api import BotError, BotMode, BotState
from engine.core.bus import Topic
from engine.core.events import Alert
from engine.core.models import Side
from tests.bots.conftest import HandBot, QuoteRaiser, TimerRaiser, start, step, stop

NS = 1_000_000_000


def bot_orders(engine, name: str):
    return [o for o in engine.oms.orders() if o.source == f"bot:{name}"]


def test_an_auto_order_past_the_bots_max_notional_is_refused(engine_for):
    engine = engine_for(**{"bots.max_notional": 10_000})
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    ask = engine.market.quote("AAPL").ask
    fits = int(Decimal(10_000) / ask)  # the most shares whose notional is within $10,000
    refused = bot.propose(Side.BUY, fits + 1)
    assert not refused.ok
    assert refused.message.startswith("bot b budget: $")
    assert bot_orders(engine, "b") == []
    accepted = bot.propose(Side.BUY, fits)
    assert accepted.ok
    assert [(o.qty, o.limit_price) for o in bot_orders(engine, "b")] == [(Decimal(fits), ask)]


def test_an_auto_order_past_a_global_risk_limit_is_rejected_by_risk(engine_for):
    engine = engine_for(**{"risk.max_order_qty": 10, "bots.max_notional": "none"})
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    outcome = bot.propose(Side.BUY, 11)
    assert not outcome.ok
    assert outcome.message.startswith("rejected by risk:")
    assert bot_orders(engine, "b") == []


def test_a_bot_may_not_trade_more_symbols_than_its_max_positions(engine_for):
    engine = engine_for(**{"bots.budgets": "b=max_positions=1"})
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL+MSFT"}, BotMode.AUTO)
    start(engine)
    assert bot.propose(Side.BUY, 1, "AAPL", cross=False).ok
    outcome = bot.propose(Side.BUY, 1, "MSFT", cross=False)
    assert outcome.message == "bot b budget: it already trades 1 symbols, its limit"


def test_a_bot_that_lost_its_max_daily_loss_opens_nothing_more(engine_for):
    engine = engine_for(**{"bots.max_daily_loss": "0.01"})
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    quote = engine.market.quote("AAPL")
    assert bot.propose(Side.BUY, 10).ok  # at the ask
    step(engine, 5)
    assert bot.ctx.position("AAPL") == 10
    assert bot.propose(Side.SELL, 10).ok  # at the bid: a reducing order always passes
    step(engine, 5)
    perf = engine.bots.view("b").performance
    assert perf.realized_pnl < 0
    refused = bot.propose(Side.BUY, 1)
    assert not refused.ok
    assert "today's loss" in refused.message
    assert quote.ask > quote.bid


def test_a_bot_that_raises_is_marked_errored_and_the_engine_goes_on(engine_for):
    engine = engine_for()
    alerts: list[Alert] = []
    engine.bus.subscribe(Topic.ALERT, alerts.append)
    calm = engine.bots.add_bot("calm", HandBot, {"symbols": "AAPL"}, BotMode.AUTO)
    engine.bots.add_bot("wild", QuoteRaiser, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    view = engine.bots.view("wild")
    assert view.state is BotState.ERRORED
    assert view.error == "ZeroDivisionError: division by zero"
    assert any(a.source == "bot:wild" and "raised" in a.message for a in alerts)
    assert engine.bots.view("calm").state is BotState.RUNNING
    assert calm.propose(Side.BUY, 1).ok
    assert engine.bus.handler_errors == 0


def test_an_errored_bots_working_orders_are_cancelled_by_default(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", TimerRaiser, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    assert bot.propose(Side.BUY, 1, cross=False).ok  # rests far under the bid
    bot.ctx.set_timer(NS, "check")
    engine.clock.advance_by(NS)
    step(engine, 3)
    assert engine.bots.view("b").error == "RuntimeError: boom in check"
    assert [o.status.value for o in bot_orders(engine, "b")] == ["canceled"]


def test_with_on_error_keep_an_errored_bots_orders_keep_working(engine_for):
    engine = engine_for(**{"bots.on_error": "keep"})
    bot = engine.bots.add_bot("b", TimerRaiser, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    assert bot.propose(Side.BUY, 1, cross=False).ok
    bot.ctx.set_timer(NS, "check")
    engine.clock.advance_by(NS)
    step(engine, 3)
    assert engine.bots.view("b").state is BotState.ERRORED
    assert [o.is_open for o in bot_orders(engine, "b")] == [True]


def test_an_advised_opportunity_waits_for_the_trader_and_approval_sends_it(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.ADVISE)
    start(engine)
    assert bot.propose(Side.BUY, 5).ok
    assert bot_orders(engine, "b") == []
    (queued,) = engine.bots.opportunities()
    assert (queued.bot, queued.side, queued.qty) == ("b", Side.BUY, Decimal(5))
    assert engine.bots.approve(queued.id).ok
    assert engine.bots.opportunities() == []
    assert [o.qty for o in bot_orders(engine, "b")] == [Decimal(5)]


def test_a_rejected_opportunity_leaves_the_queue_and_sends_nothing(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.ADVISE)
    start(engine)
    bot.propose(Side.BUY, 5)
    (queued,) = engine.bots.opportunities()
    assert engine.bots.reject(queued.id).ok
    assert engine.bots.opportunities() == []
    assert bot_orders(engine, "b") == []


def test_an_opportunity_disappears_when_it_expires(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.ADVISE)
    start(engine)
    bot.propose(Side.BUY, 5)  # valid for 60 s
    (queued,) = engine.bots.opportunities()
    engine.clock.advance_to(queued.expires_at)
    assert engine.bots.opportunities() == []


def test_a_bot_in_off_mode_only_records_its_signal(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.OFF)
    start(engine)
    bot.propose(Side.BUY, 5)
    assert engine.bots.opportunities() == []
    assert bot_orders(engine, "b") == []
    assert engine.bots.view("b").last_signal.startswith("buy 5 AAPL lmt ")


def test_stopping_a_bot_cancels_its_working_orders(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    bot.propose(Side.BUY, 1, cross=False)
    step(engine, 3)
    assert engine.bots.stop_bot("b") == "bot b stopped"
    step(engine, 3)
    assert engine.bots.view("b").state is BotState.STOPPED
    assert [o.status.value for o in bot_orders(engine, "b")] == ["canceled"]


def test_cycling_the_mode_goes_off_advise_auto(engine_for):
    engine = engine_for()
    engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.OFF)
    start(engine)
    modes = []
    for _ in range(3):
        engine.bots.cycle_mode("b")
        modes.append(engine.bots.view("b").mode)
    assert modes == [BotMode.ADVISE, BotMode.AUTO, BotMode.OFF]


def test_performance_mode_and_last_signal_survive_a_restart(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.AUTO)
    start(engine)
    bot.propose(Side.BUY, 10)
    step(engine, 5)
    bot.propose(Side.SELL, 4)
    step(engine, 5)
    before = engine.bots.view("b")
    assert (before.performance.trades, before.performance.round_trips) == (2, 1)
    stop(engine)

    again = engine_for()
    same = again.bots.add_bot("b", HandBot, {"symbols": "AAPL"}, BotMode.AUTO)
    start(again)
    after = again.bots.view("b")
    assert after.performance.realized_pnl == before.performance.realized_pnl
    assert (after.performance.trades, after.performance.round_trips) == (2, 1)
    assert after.performance.wins == before.performance.wins
    assert same.ctx.position("AAPL") == Decimal(6)
    assert (after.last_signal, after.last_signal_ns) == (before.last_signal, before.last_signal_ns)


def test_an_auto_bot_with_an_algo_has_it_work_the_order_and_is_credited_its_fills(engine_for):
    engine = engine_for()
    bot = engine.bots.add_bot("b", HandBot, {"symbols": "AAPL", "algo": "twap 2m"}, BotMode.AUTO)
    start(engine)
    outcome = bot.propose(Side.BUY, 100)
    assert outcome.ok and outcome.order_id == "algo-1"
    (parent,) = engine.execution.parents()
    assert (parent.owner, parent.qty, parent.algo) == ("bot:b", Decimal(100), "twap")
    while engine.clock.now_ns() < parent.end_ns + 10 * NS:  # past the algo's two minutes
        step(engine, 100)
    assert engine.execution.parent("algo-1").filled_qty == 100
    assert bot.ctx.position("AAPL") == 100  # the children's fills, credited to the bot
    assert {o.source for o in bot.ctx.orders()} == {"algo:algo-1"}
    assert engine.bots.view("b").performance.trades > 1


def test_a_bot_algo_that_is_not_one_is_one_sentence(engine_for):
    engine = engine_for()
    with pytest.raises(BotError, match="'twap soon' is not an execution algo"):
        engine.bots.add_bot("b", HandBot, {"symbols": "AAPL", "algo": "twap soon"}, BotMode.AUTO)
