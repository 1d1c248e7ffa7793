"""The main screen: the panes, the order line, and the loop that keeps them current.

Every ``1 / refresh_hz`` seconds the screen pulls one ``EngineSnapshot`` (only
what changed since its cursor) and hands it to each pane inside one
``batch_update``, so a pull repaints once. Commands typed or keyed here go to the
engine through the client; the outcome lands on the message line.

Layout: at 120x40 the quote board fills the top left, the blotter sits under
it, and positions, risk and health stack on the right. Under the breakpoints
(narrower than ``WIDE_FROM`` or shorter than ``TALL_FROM``) the quote board
shares the screen with one secondary pane, the one last focused by key.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import ClassVar, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static

from engine.client import Cursor, EngineClient, EngineSnapshot, Outcome
from engine.config import Settings
from engine.core.errors import TickdeckError
from engine.core.models import Side
from tui.messages import Say, Tone
from tui.screens.confirm import ConfirmKill, ConfirmOrder, KillChoice
from tui.widgets.blotter import Blotter
from tui.widgets.bots_pane import BotsPane
from tui.widgets.chart import Chart
from tui.widgets.format import fmt_price
from tui.widgets.health_pane import HealthPane
from tui.widgets.message_line import MessageLine
from tui.widgets.options_pane import OptionsPane
from tui.widgets.order_line import OrderEntry, OrderLine
from tui.widgets.positions import PositionsPane
from tui.widgets.quote_board import QuoteBoard
from tui.widgets.risk_pane import RiskPane

WIDE_FROM = 110  # columns: below this, one secondary pane at a time
TALL_FROM = 32  # rows: likewise
NEW_YORK = ZoneInfo("America/New_York")
_NS_PER_SECOND = 1_000_000_000
PORTFOLIO_EVERY_S = 3.0  # wall seconds between portfolio greeks/VaR pulls (not per frame)

PANES = ("quotes", "blotter", "positions", "risk", "health", "chart", "options", "bots")
"""Pane ids, in the order the layout places them."""
SECONDARY = ("blotter", "positions", "risk", "health", "chart", "options", "bots")
"""The panes that share the lower half of a small terminal, one at a time."""
PANE_TITLES = {
    "quotes": "Quotes",
    "blotter": "Orders",
    "positions": "Positions",
    "risk": "Risk",
    "health": "Health",
    "chart": "Chart",
    "options": "Options",
    "bots": "Bots",
}


@runtime_checkable
class Pane(Protocol):
    """The pane contract: take what changed from a snapshot (``None`` parts are unchanged)."""

    def apply(self, snapshot: EngineSnapshot) -> None: ...


class StatusBar(Static):
    """Mode, engine time and the kill switch; the wall clock only when asked for (never in tests)."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, *, clock_text: bool, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.clock_text = clock_text
        self._kill: tuple[bool, str] = (False, "")
        self._shown: tuple[object, ...] = ()

    def apply(self, snapshot: EngineSnapshot) -> None:
        if snapshot.risk is not None:
            self._kill = (snapshot.risk.kill_engaged, snapshot.risk.kill_reason)
        wall = datetime.now().astimezone().strftime("%H:%M:%S") if self.clock_text else ""
        second = snapshot.clock_ns // _NS_PER_SECOND
        state = (snapshot.mode, second, self._kill, wall)
        if state == self._shown:
            return
        self._shown = state
        moment = datetime.fromtimestamp(second, tz=NEW_YORK)
        parts: list[str | tuple[str, str]] = [
            ("tickdeck", "bold $text-primary"),
            "  ",
            (f" {snapshot.mode.upper()} ", "bold reverse $text-accent"),
            "  ",
            moment.strftime("%a %Y-%m-%d %H:%M:%S ET"),
        ]
        engaged, reason = self._kill
        if engaged:
            parts += ["   ", (" KILL SWITCH ENGAGED ", "bold reverse $text-error")]
            if reason:
                parts += [(f" {reason}", "$text-error")]
        if wall:
            parts += [(f"   local {wall}", "$text-muted")]
        # One fixed-height line: a relayout of the whole screen every second would cost a frame.
        self.update(Content.assemble(*parts), layout=False)


class MainScreen(Screen[None]):
    """Quotes, orders, positions, risk, health, a chart, the message line and the order line."""

    CSS_PATH = "main.tcss"
    AUTO_FOCUS = "#order-line"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (WIDE_FROM, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (TALL_FROM, "-tall")]
    ALLOW_IN_MAXIMIZED_VIEW = "#status, #messages, #order-entry, Footer"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "tab",
            "app.focus_next",
            "Next",
            show=False,
            id="screen.focus_next",
            tooltip="Move focus to the next pane (in the order line: complete a symbol first)",
        ),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous",
            show=False,
            id="screen.focus_previous",
            tooltip="Move focus to the previous pane",
        ),
    ]

    def __init__(
        self,
        client: EngineClient,
        settings: Settings,
        *,
        symbols: list[str],
        clock_text: bool,
        deterministic: bool,
        auto_pull: bool,
    ) -> None:
        super().__init__()
        self.client = client
        self.settings = settings
        self.symbols = list(symbols)
        self.clock_text = clock_text
        self.deterministic = deterministic
        self.auto_pull = auto_pull
        self.cursor = Cursor()
        self.clock_ns: int | None = None  # engine time of the latest snapshot
        # What the focus keys last chose, and so what maximize fills the screen with.
        self.current_pane = "quotes"
        self.secondary = "blotter"  # the one secondary pane a small terminal shows
        self.chart_shown = False
        self.options_shown = False
        self.bots_shown = False
        self._panes: tuple[Pane, ...] = ()
        self._pulling = False

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(clock_text=self.clock_text, id="status")
        with Container(id="panes"):
            yield QuoteBoard(self.symbols, id="quotes")
            yield PositionsPane(id="positions")
            yield RiskPane(id="risk")
            yield Chart(id="chart")
            yield OptionsPane(id="options")
            yield BotsPane(id="bots")
            yield Blotter(id="blotter")
            yield HealthPane(id="health")
        yield MessageLine(id="messages")
        yield OrderEntry(self.client, id="order-entry")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self._panes = tuple(self.query_one(f"#{pane_id}", Pane) for pane_id in PANES)
        for pane_id, title in PANE_TITLES.items():
            self.pane(pane_id).border_title = title
        if self.deterministic:
            self.order_line.cursor_blink = False
        self._show_secondary(self.secondary)
        await self.pull()
        await self.pull_portfolio()
        if self.auto_pull:
            hz = self.settings.console.refresh_hz
            self.set_interval(1 / hz, self.pull, name="engine-snapshots")
            self.set_interval(PORTFOLIO_EVERY_S, self.pull_portfolio, name="portfolio-risk")

    @property
    def order_entry(self) -> OrderEntry:
        return self.query_one(OrderEntry)

    @property
    def order_line(self) -> OrderLine:
        return self.query_one(OrderLine)

    @property
    def quote_board(self) -> QuoteBoard:
        return self.query_one(QuoteBoard)

    @property
    def message_line(self) -> MessageLine:
        return self.query_one(MessageLine)

    def pane(self, pane_id: str) -> Widget:
        """The pane with id ``pane_id`` (one of ``PANES``)."""
        return self.query_one(f"#{pane_id}")

    def _show_secondary(self, pane_id: str) -> None:
        self.secondary = pane_id
        for each in SECONDARY:
            self.set_class(each == pane_id, f"-show-{each}")

    # -- the refresh loop -----------------------------------------------------------------

    async def pull(self) -> None:
        """Pull what changed from the engine and apply it to every pane (one repaint)."""
        if self._pulling:  # a slow engine must not stack pulls up behind each other
            return
        self._pulling = True
        try:
            snapshot = await self.client.snapshot(self.cursor)
        except TickdeckError as error:
            # An attached engine went away (or refused): leave, saying why, not with a traceback.
            self.app.exit(return_code=1, message=f"tickdeck: {error}")
            return
        finally:
            self._pulling = False
        self.cursor = snapshot.cursor
        self.clock_ns = snapshot.clock_ns
        with self.app.batch_update():
            for pane in self._panes:
                pane.apply(snapshot)
            self.query_one(StatusBar).apply(snapshot)
            self.message_line.show_alerts(snapshot.alerts)
        if self.bots_shown:
            await self.pull_bots()
        entry = self.order_entry
        symbol = entry.previewed_symbol
        if symbol is not None and (
            snapshot.book is not None or any(q.symbol == symbol for q in snapshot.quotes)
        ):
            entry.refresh_preview()

    async def pull_portfolio(self) -> None:
        """Pull the portfolio's greeks and VaR for the risk pane (every few seconds, not per frame)."""
        limits = self.settings.risk  # [risk] var_horizon_days, var_confidence_pct, var_paths
        risk = await self.client.portfolio_risk(
            horizon_days=float(limits.var_horizon_days),
            confidence=float(limits.var_confidence_pct) / 100,
            paths=limits.var_paths,
        )
        self.query_one(RiskPane).show_portfolio(risk)

    def say(self, text: str, tone: Tone = Tone.INFO) -> None:
        """Put ``text`` on the message line, stamped with the engine's time."""
        self.message_line.show(text, tone, self.clock_ns)

    @on(Say)
    def _say(self, message: Say) -> None:
        message.stop()
        self.say(message.text, message.tone)

    # -- orders from the order line ------------------------------------------------------

    @on(Input.Submitted, "#order-line")
    async def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        line = event.value.strip()
        # A second Enter queued behind the first carries the old text: only the line as it is now counts.
        if not line or event.value != self.order_line.value:
            return
        self.order_line.remember(line)
        outcome = await self.client.execute(line)
        if outcome.needs_confirmation:
            preview = await self.client.preview(line)
            reasons = [v.message for v in preview.violations if v.soft] or [outcome.message]
            self.app.push_screen(
                ConfirmOrder(preview.summary or line, reasons), partial(self._confirmed, line)
            )
            return
        await self._finish(line, outcome)

    async def _confirmed(self, line: str, confirmed: bool | None) -> None:
        if not confirmed:
            self.say(f"not sent: {line}", Tone.WARNING)
            return
        await self._finish(line, await self.client.execute(line, confirmed=True))

    async def _finish(self, line: str, outcome: Outcome) -> None:
        """Clear the line when it worked; keep it (to fix) and say why when it did not."""
        if outcome.ok:
            if self.order_line.value.strip() == line:
                self.order_line.prefill("")
            self.say(outcome.message, Tone.SUCCESS)
        else:
            self.say(outcome.message, Tone.ERROR)
        await self.pull()

    # -- tickets, cancel and replace -------------------------------------------------------

    def ticket(self, side: Side, symbol: str | None = None) -> None:
        """Prefill a limit order at the touch (ask to buy, bid to sell) for ``symbol``.

        Without ``symbol``, the quote board's selected one.
        """
        board = self.quote_board
        symbol = symbol or board.selected_symbol
        if symbol is None:
            self.say("select a symbol on the quote board first", Tone.WARNING)
            return
        quote = board.snapshot_of(symbol)
        touch = None
        if quote is not None:
            touch = quote.ask if side is Side.BUY else quote.bid
        qty = _plain(self.settings.console.ticket_qty)
        price = fmt_price(touch) if touch else ""
        self.order_line.prefill(f"{side.value} {qty} {symbol} lmt {price}".rstrip() + " ")

    def prefill(self, text: str) -> None:
        """Put ``text`` on the order line and focus it."""
        self.order_line.prefill(text)

    @on(Blotter.CancelRequested)
    async def _cancel_requested(self, event: Blotter.CancelRequested) -> None:
        event.stop()
        outcome = await self.client.cancel(event.order_id)
        self.say(outcome.message, Tone.SUCCESS if outcome.ok else Tone.ERROR)
        await self.pull()

    @on(Blotter.ReplaceRequested)
    def _replace_requested(self, event: Blotter.ReplaceRequested) -> None:
        event.stop()
        self.prefill(f"replace {event.order_id} px ")

    @on(Blotter.PauseRequested)
    async def _pause_requested(self, event: Blotter.PauseRequested) -> None:
        event.stop()
        verb = "resume" if event.resume else "pause"
        outcome = await self.client.execute(f"{verb} {event.order_id}")
        self.say(outcome.message, Tone.SUCCESS if outcome.ok else Tone.ERROR)
        await self.pull()

    # -- kill switch -------------------------------------------------------------------------

    def request_kill(self) -> None:
        """Ask, then engage the kill switch (optionally flattening every position)."""
        self.app.push_screen(ConfirmKill(), self._kill_chosen)

    async def _kill_chosen(self, choice: KillChoice | None) -> None:
        if choice in (None, KillChoice.CANCEL):
            self.say("kill switch not engaged", Tone.INFO)
            return
        outcome = await self.client.kill(flatten=choice is KillChoice.KILL_AND_FLATTEN)
        self.say(outcome.message, Tone.WARNING if outcome.ok else Tone.ERROR)
        await self.pull()

    async def reset_kill(self) -> None:
        """Release the kill switch: orders that add risk are accepted again."""
        outcome = await self.client.reset_kill()
        self.say(outcome.message, Tone.SUCCESS if outcome.ok else Tone.ERROR)
        await self.pull()

    async def run_line(self, line: str) -> None:
        """Carry out one order-language line that needs no confirmation (``cancel all``)."""
        outcome = await self.client.execute(line)
        self.say(outcome.message, Tone.SUCCESS if outcome.ok else Tone.ERROR)
        await self.pull()

    # -- panes: focus, maximize, chart -------------------------------------------------------

    def focus_pane(self, pane_id: str) -> None:
        """Bring ``pane_id`` forward: focus it, show it on a small terminal, fill the screen if
        another pane fills it now. ``order-line`` focuses the order line."""
        if pane_id == "order-line":
            self.order_line.focus()
            return
        pane = self.pane(pane_id)
        self.current_pane = pane_id
        if pane_id in SECONDARY:
            self._show_secondary(pane_id)
        if self.maximized is not None:
            self.maximized = pane
        for each in PANES:
            self.pane(each).set_class(each == pane_id, "-current")
        if pane.focusable:
            pane.focus()

    def toggle_maximize(self) -> None:
        """Fill the screen with the current pane, or put it back."""
        if self.maximized is not None:
            self.minimize()
        else:
            self.maximized = self.pane(self.current_pane)

    def toggle_chart(self) -> None:
        """F4: the selected symbol's intraday chart (in place of positions and risk), then its
        daily history, then no chart."""
        chart = self.query_one(Chart)
        if self.chart_shown and not chart.daily:
            chart.daily = True
            self._draw_chart(self.quote_board.selected_symbol)
            return
        chart.daily = False
        self.chart_shown = not self.chart_shown
        self.set_class(self.chart_shown, "-chart")
        if self.chart_shown:
            self._show_secondary("chart")
            self._draw_chart(self.quote_board.selected_symbol)
        elif self.secondary == "chart":
            self._show_secondary("blotter")

    def toggle_options(self) -> None:
        """Show the selected symbol's option chain (in place of the chart, positions and risk,
        focused so its expiry keys work), or hide it."""
        self.options_shown = not self.options_shown
        self.set_class(self.options_shown, "-options")
        if self.options_shown:
            self.focus_pane("options")
            self._show_options(self.quote_board.selected_symbol)
            return
        if self.secondary == "options":
            self._show_secondary("chart" if self.chart_shown else "blotter")
        if self.current_pane == "options":
            self.focus_pane("quotes")

    @on(QuoteBoard.SymbolSelected)
    def _symbol_selected(self, event: QuoteBoard.SymbolSelected) -> None:
        if self.chart_shown:
            self._draw_chart(event.symbol)
        if self.options_shown:
            self._show_options(event.symbol)

    @work(exclusive=True, group="options")
    async def _show_options(self, symbol: str | None) -> None:
        if symbol is None:
            self.say("select a symbol on the quote board to see its options", Tone.WARNING)
            return
        await self.query_one(OptionsPane).show(self.client, symbol)

    # -- bots ----------------------------------------------------------------------------------

    def toggle_bots(self) -> None:
        """Show the bots and their opportunity queue (in place of positions and risk, focused so
        its keys work), or hide them."""
        self.bots_shown = not self.bots_shown
        self.set_class(self.bots_shown, "-bots")
        if self.bots_shown:
            self.focus_pane("bots")
            self.call_later(self.pull_bots)
            return
        if self.secondary == "bots":
            self._show_secondary("chart" if self.chart_shown else "blotter")
        if self.current_pane == "bots":
            self.focus_pane("quotes")

    async def pull_bots(self) -> None:
        """The bots' states and the opportunity queue, into the bots pane."""
        self.query_one(BotsPane).show(await self.client.bots())

    @on(BotsPane.OpportunityAction)
    async def _opportunity_action(self, event: BotsPane.OpportunityAction) -> None:
        event.stop()
        client = self.client
        if event.action == "edit":
            outcome = await client.edit_opportunity(event.opportunity_id)
            if outcome.ok:
                self.prefill(outcome.message + " ")
                self.say("edit the order and press Enter to send it as your own", Tone.INFO)
            else:
                self.say(outcome.message, Tone.ERROR)
        else:
            command = (
                client.approve_opportunity
                if event.action == "approve"
                else client.reject_opportunity
            )
            outcome = await command(event.opportunity_id)
            self.say(outcome.message, Tone.SUCCESS if outcome.ok else Tone.ERROR)
        await self.pull()
        await self.pull_bots()

    @on(BotsPane.BotAction)
    async def _bot_action(self, event: BotsPane.BotAction) -> None:
        event.stop()
        commands = {
            "start": self.client.start_bot,
            "stop": self.client.stop_bot,
            "pause": self.client.pause_bot,
            "mode": self.client.cycle_bot_mode,
        }
        outcome = await commands[event.action](event.bot)
        self.say(outcome.message, Tone.SUCCESS if outcome.ok else Tone.ERROR)
        await self.pull()
        await self.pull_bots()

    @work(exclusive=True, group="chart")
    async def _draw_chart(self, symbol: str | None) -> None:
        if symbol is None:
            self.say("select a symbol on the quote board to chart it", Tone.WARNING)
            return
        await self.query_one(Chart).show(self.client, symbol)


def _plain(number: Decimal) -> str:
    """A quantity as the order language reads it: ``100``, ``0.5`` (no exponent, no commas)."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
