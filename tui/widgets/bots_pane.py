"""Bots: each bot's state, mode and performance, and the opportunity queue.

The top table has one row per bot: state, mode, realized and unrealized P&L,
trades, win rate, Sharpe, and its last signal with the engine time it came. Under
it, the opportunities the bots in advise mode have queued, oldest first, with
their confidence, seconds to expiry and rationale. One cursor runs down both
lists: on an opportunity ``a`` (or Enter) approves it, ``e`` puts it on the order
line to edit, ``r`` (or Delete) rejects it; on a bot ``s`` starts or stops it (a
paused bot resumes), ``p`` pauses it and ``m`` cycles its mode (off, advise, auto). The keys post messages; the main screen
sends them to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widget import Widget

from engine.bots.api import BotState, Opportunity
from engine.bots.service import BotView
from engine.client import BotsSnapshot, EngineSnapshot
from tui.messages import Say, Tone
from tui.widgets.format import (
    MUTED,
    NA,
    Column,
    fit_columns,
    fmt_money,
    fmt_time,
    header_content,
    row_content,
    sign_style,
)

NS_PER_SECOND = 1_000_000_000
SELECTED = "reverse"

BOT_COLUMNS = (
    Column("name", "BOT", 14, left=True),
    Column("state", "STATE", 7, left=True),
    Column("mode", "MODE", 6, left=True),
    Column("realized", "REALIZED", 10),
    Column("unrealized", "UNREAL", 10, drop=1),
    Column("trades", "TRADES", 6, drop=2),
    Column("win", "WIN%", 5, drop=3),
    Column("sharpe", "SHARPE", 6, drop=4),
)
OPPORTUNITY_COLUMNS = (
    Column("bot", "BOT", 14, left=True),
    Column("order", "ORDER", 28, left=True),
    Column("confidence", "CONF", 5),
    Column("expires", "LEFT", 4, drop=1),
)
MIN_WHY = 12  # the rationale column takes what is left of the width, when at least this much
STATE_STYLES = {
    BotState.RUNNING: "$success",
    BotState.PAUSED: "$warning",
    BotState.STOPPED: MUTED,
    BotState.ERRORED: "bold $error",
}


@dataclass(slots=True, frozen=True)
class _Row:
    """What the cursor is on: a bot (by name) or an opportunity (by id)."""

    kind: str  # "bot" or "opportunity"
    key: str


class BotsPane(Widget, can_focus=True):
    """The bots and their opportunity queue; shown in place of positions and risk (ctrl+b)."""

    DEFAULT_CSS = """
    BotsPane {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False, id="bots.up", tooltip="Select the row above"),
        Binding(
            "down", "move(1)", "Down", show=False, id="bots.down", tooltip="Select the row below"
        ),
        Binding(
            "a,enter",
            "approve",
            "Approve",
            show=False,
            id="bots.approve",
            tooltip="Approve the selected opportunity: send it as its bot's order",
        ),
        Binding(
            "e",
            "edit",
            "Edit",
            show=False,
            id="bots.edit",
            tooltip="Put the selected opportunity on the order line, to edit and send yourself",
        ),
        Binding(
            "r,delete",
            "reject",
            "Reject",
            show=False,
            id="bots.reject",
            tooltip="Reject the selected opportunity",
        ),
        Binding(
            "s",
            "start_stop",
            "Start/stop",
            show=False,
            id="bots.start_stop",
            tooltip="Start the selected bot, or stop it (its working orders are cancelled)",
        ),
        Binding(
            "p",
            "pause",
            "Pause",
            show=False,
            id="bots.pause",
            tooltip="Pause the selected bot: it keeps its orders but gets no data (s resumes)",
        ),
        Binding(
            "m",
            "cycle_mode",
            "Mode",
            show=False,
            id="bots.mode",
            tooltip="Cycle the selected bot's mode: off, advise, auto",
        ),
    ]

    class OpportunityAction(Message):
        """The trader acted on opportunity ``opportunity_id``: approve, edit or reject."""

        def __init__(self, action: str, opportunity_id: str) -> None:
            super().__init__()
            self.action = action
            self.opportunity_id = opportunity_id

    class BotAction(Message):
        """The trader acted on bot ``bot`` (its name): start, stop or mode."""

        def __init__(self, action: str, bot: str) -> None:
            super().__init__()
            self.action = action
            self.bot = bot

    # Per-instance state (assigned on the instance); these are the initial values.
    _bots: tuple[BotView, ...] = ()
    _queue: tuple[Opportunity, ...] = ()
    _clock_ns: int = 0
    _selected: _Row | None = None

    def apply(self, snapshot: EngineSnapshot) -> None:
        """Engine time moves the expiry countdowns; the bots themselves come from ``show``."""
        if self._queue and snapshot.clock_ns // NS_PER_SECOND != self._clock_ns // NS_PER_SECOND:
            self._clock_ns = snapshot.clock_ns
            self.refresh()

    def show(self, bots: BotsSnapshot) -> None:
        """Take the latest bots and queue; the cursor stays on its row while the row exists."""
        self._bots, self._queue, self._clock_ns = bots.bots, bots.opportunities, bots.clock_ns
        rows = self._rows()
        if self._selected not in rows:
            opportunities = [row for row in rows if row.kind == "opportunity"]
            self._selected = (opportunities or rows or [None])[0]
        self.refresh()

    def _rows(self) -> list[_Row]:
        return [_Row("bot", b.name) for b in self._bots] + [
            _Row("opportunity", o.id) for o in self._queue
        ]

    @property
    def selected(self) -> _Row | None:
        return self._selected

    # -- keys ------------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        rows = self._rows()
        if not rows:
            return
        index = rows.index(self._selected) if self._selected in rows else 0
        self._selected = rows[max(0, min(len(rows) - 1, index + step))]
        self.refresh()

    def _opportunity_action(self, action: str) -> None:
        row = self._selected
        if row is None or row.kind != "opportunity":
            self.notify_none("select an opportunity first")
            return
        self.post_message(self.OpportunityAction(action, row.key))

    def notify_none(self, text: str) -> None:
        """Nothing to act on: say so on the message line."""
        self.post_message(Say(text, Tone.WARNING))

    def action_approve(self) -> None:
        self._opportunity_action("approve")

    def action_edit(self) -> None:
        self._opportunity_action("edit")

    def action_reject(self) -> None:
        self._opportunity_action("reject")

    def _bot_action(self, action: str) -> None:
        row = self._selected
        if row is None or row.kind != "bot":
            self.notify_none("select a bot first")
            return
        if action == "start_stop":
            bot = next(b for b in self._bots if b.name == row.key)
            action = "stop" if bot.state is BotState.RUNNING else "start"
        self.post_message(self.BotAction(action, row.key))

    def action_start_stop(self) -> None:
        self._bot_action("start_stop")

    def action_cycle_mode(self) -> None:
        self._bot_action("mode")

    def action_pause(self) -> None:
        self._bot_action("pause")

    # -- drawing ---------------------------------------------------------------------------

    def render(self) -> Content:
        width = self.size.width
        if not self._bots:
            return Content.styled(
                "no bots: start tickdeck with --bot KIND[:MODE], e.g. --bot momentum:advise",
                MUTED,
            )
        columns = fit_columns(BOT_COLUMNS, width)
        lines = [header_content(columns)]
        for bot in self._bots:
            lines += self._bot_lines(bot, columns)
        lines.append(Content())
        lines.append(Content.styled(f"OPPORTUNITIES ({len(self._queue)})", f"bold {MUTED}"))
        if not self._queue:
            lines.append(Content.styled("none queued", MUTED))
        else:
            columns = fit_columns(OPPORTUNITY_COLUMNS, width)
            room = width - sum(c.width + 1 for c in columns)
            if room >= MIN_WHY:
                columns += (Column("why", "WHY", room, left=True),)
            lines.append(header_content(columns))
            lines += [self._opportunity_line(o, columns) for o in self._queue]
        return Content("\n").join(lines)

    def _bot_lines(self, bot: BotView, columns: tuple[Column, ...]) -> list[Content]:
        """The bot's row, then its last signal and when it came (or its error)."""
        perf = bot.performance
        values = {
            "name": (bot.name, "bold"),
            "state": (bot.state.value, STATE_STYLES[bot.state]),
            "mode": (bot.mode.value, "bold" if bot.mode.value == "auto" else ""),
            "realized": (fmt_money(perf.realized_pnl, signed=True), sign_style(perf.realized_pnl)),
            "unrealized": (
                fmt_money(perf.unrealized_pnl, signed=True),
                sign_style(perf.unrealized_pnl),
            ),
            "trades": (str(perf.trades), ""),
            "win": (NA if perf.win_rate is None else f"{perf.win_rate:.0%}", ""),
            "sharpe": (NA if perf.sharpe is None else f"{perf.sharpe:.2f}", ""),
        }
        line = row_content([(c, *values[c.key]) for c in columns])
        if self._selected == _Row("bot", bot.name):
            line = line.stylize(SELECTED)
        if bot.error:
            detail = Content.styled(f"  error: {bot.error}", "$error")
        elif bot.last_signal:
            detail = Content.assemble(
                (f"  last signal {fmt_time(bot.last_signal_ns)}  ", MUTED), bot.last_signal
            )
        else:
            detail = Content.styled("  no signal yet", MUTED)
        return [line, detail]

    def _opportunity_line(self, opportunity: Opportunity, columns: tuple[Column, ...]) -> Content:
        left_s = max(0, (opportunity.expires_at - self._clock_ns) // NS_PER_SECOND)
        values = {
            "bot": (opportunity.bot, "bold"),
            "order": (opportunity.order_line, "$text-accent"),
            "confidence": (f"{opportunity.confidence:.0%}", ""),
            "expires": (f"{left_s}s", "$warning" if left_s < 10 else MUTED),
            "why": (opportunity.rationale, MUTED),
        }
        line = row_content([(c, *values[c.key]) for c in columns])
        selected = self._selected == _Row("opportunity", opportunity.id)
        return line.stylize(SELECTED) if selected else line
