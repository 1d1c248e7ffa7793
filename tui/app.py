"""The console app: keys, palette, themes and the engine client's lifetime; the screens do the rest.

``make_app`` builds the app for tests and snapshots (no cursor blink, no
animations, no wall clock on screen; the engine's SimClock is the only time
shown). ``run_console`` runs it in a terminal: it also exits cleanly when the
terminal goes away (SIGHUP, or stdin no longer a TTY) and stops the engine
whatever happens, so the journal is closed and Textual restores the terminal.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
from collections.abc import Sequence
from functools import partial
from typing import ClassVar

from loguru import logger
from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode

from engine.client import EngineClient
from engine.config import Settings
from engine.core.models import Side
from tui.commands import PaletteCommand, TickdeckCommands
from tui.messages import Say, Tone
from tui.screens.backtest import BacktestScreen
from tui.screens.confirm import ConfirmKill, ConfirmOrder
from tui.screens.help import HelpScreen, KeyRow, class_bindings, key_rows
from tui.screens.main import MainScreen
from tui.themes import register_themes

TERMINAL_CHECK_S = 1.0  # how often to look for a terminal that went away
EXIT_GRACE_S = 5.0  # how long a signalled console may take to stop before the process just ends

# Where each pane's own keys work, for the keys screen.
_WHERE = {
    "quotes": "quotes",
    "blotter": "orders",
    "positions": "positions",
    "risk": "risk",
    "health": "health",
    "chart": "chart",
    "options": "options",
    "bots": "bots",
    "order-line": "order line",
}


class TickdeckApp(App[int]):
    """The trading console over one ``EngineClient``."""

    TITLE = "tickdeck"
    COMMANDS = App.COMMANDS | {TickdeckCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Keys", id="app.help", tooltip="List every key and what it does"),
        Binding(
            "f2",
            "ticket('buy')",
            "Buy",
            id="app.buy_ticket",
            tooltip="Prefill a buy limit at the ask for the selected quote",
        ),
        Binding(
            "f3",
            "ticket('sell')",
            "Sell",
            id="app.sell_ticket",
            tooltip="Prefill a sell limit at the bid for the selected quote",
        ),
        Binding(
            "f4",
            "chart",
            "Chart",
            id="app.chart",
            tooltip="Chart the selected symbol: intraday, again for its daily history, again to hide",
        ),
        Binding(
            "f5",
            "focus_pane('order-line')",
            "Order line",
            show=False,
            id="app.focus_order",
            tooltip="Focus the order line",
        ),
        Binding(
            "f6",
            "focus_pane('quotes')",
            "Quotes",
            show=False,
            id="app.focus_quotes",
            tooltip="Focus the quote board",
        ),
        Binding(
            "f7",
            "focus_pane('blotter')",
            "Orders",
            show=False,
            id="app.focus_blotter",
            tooltip="Focus the order blotter (ctrl+x cancels, ctrl+r replaces the selected order)",
        ),
        Binding(
            "f8",
            "focus_pane('positions')",
            "Positions",
            show=False,
            id="app.focus_positions",
            tooltip="Focus the positions pane",
        ),
        Binding(
            "f9",
            "focus_pane('risk', 'health')",
            "Risk / health",
            show=False,
            id="app.focus_risk",
            tooltip="Focus the risk pane; again for the health pane",
        ),
        Binding(
            "f10",
            "maximize",
            "Max",
            id="app.maximize",
            tooltip="Fill the screen with the current pane, or put it back",
        ),
        Binding(
            "f11",
            "options",
            "Options",
            id="app.options",
            tooltip="Show or hide the option chain of the selected symbol ([ and ] change expiry)",
        ),
        Binding(
            "ctrl+b",
            "bots",
            "Bots",
            show=False,
            id="app.bots",
            tooltip="Show or hide the bots and their opportunity queue (a approves, e edits,"
            " r rejects)",
        ),
        Binding(
            "ctrl+o",
            "backtest",
            "Backtest",
            show=False,
            id="app.backtest",
            tooltip="Backtest a bot on history; again (or Esc) to come back",
        ),
        Binding(
            "f12",
            "kill",
            "Kill",
            id="app.kill",
            tooltip="Engage the kill switch (asks first): cancel every order, block new risk",
        ),
        Binding(
            "ctrl+t",
            "next_theme",
            "Next theme",
            show=False,
            id="app.next_theme",
            tooltip="Switch to the next tickdeck theme",
        ),
        Binding(
            "ctrl+p",
            "command_palette",
            "Palette",
            show=False,
            priority=True,
            id="app.command_palette",
            tooltip="Open the command palette: every action by name",
        ),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            priority=True,
            id="app.quit",
            tooltip="Stop the engine cleanly and quit",
        ),
    ]

    def __init__(
        self,
        client: EngineClient,
        settings: Settings,
        *,
        symbols: Sequence[str],
        clock_text: bool = False,
        deterministic: bool = False,
        auto_pull: bool = True,
        watch_terminal: bool = False,
    ) -> None:
        """``clock_text`` adds the wall clock to the status bar; ``deterministic`` turns off
        the cursor blink and animations; ``auto_pull=False`` leaves pulling snapshots to
        the caller (``await app.pull()``); ``watch_terminal`` exits when stdin stops being a TTY."""
        super().__init__()
        self.client = client
        self.settings = settings
        self.symbols = list(symbols)
        self.clock_text = clock_text
        self.deterministic = deterministic
        self.auto_pull = auto_pull
        self.watch_terminal = watch_terminal
        self.keymap = dict(settings.console.keymap)
        self.tickdeck_themes: tuple[str, ...] = ()
        self.main = MainScreen(
            client,
            settings,
            symbols=self.symbols,
            clock_text=clock_text,
            deterministic=deterministic,
            auto_pull=auto_pull,
        )
        self._client_started = False
        self._client_stopped = False
        if deterministic:
            self.animation_level = "none"

    async def on_mount(self) -> None:
        self.tickdeck_themes = register_themes(self)
        self.theme = self.settings.console.theme
        self.set_keymap(self.keymap)
        await self.client.start()
        self._client_started = True
        await self.push_screen(self.main)
        # Everything built so far lives as long as the console: keep it out of the garbage
        # collector's full passes, which otherwise stall frames for 60-130 ms.
        gc.freeze()
        known = {row.binding_id for row in self.key_rows()}
        for binding_id in sorted(set(self.keymap) - known):
            self.main.post_message(
                Say(f"keymap: '{binding_id}' is not a binding id (F1 lists them)", Tone.WARNING)
            )
        if self.watch_terminal:
            self.set_interval(TERMINAL_CHECK_S, self._check_terminal, name="terminal-watch")

    async def pull(self) -> None:
        """Pull and apply one snapshot now (tests step the market, then pull)."""
        await self.main.pull()

    # -- engine lifetime ---------------------------------------------------------------------

    async def stop_client(self) -> None:
        """Stop the engine client once; an error on the way down is logged, never raised."""
        if not self._client_started or self._client_stopped:
            return
        self._client_stopped = True
        try:
            await self.client.stop()
        except Exception:  # whatever the engine does while stopping, the terminal must come back
            logger.exception("the engine did not stop cleanly")
        else:
            logger.info("console closed; engine stopped")

    async def on_unmount(self) -> None:
        await self.stop_client()

    async def action_quit(self) -> None:
        try:
            await self.stop_client()
        finally:
            if self.watch_terminal:
                # In a real terminal: the engine has stopped (or detached) cleanly by now; if
                # the terminal's teardown then hangs, the watchdog ends the process rather
                # than leave the trader stuck.
                self.leave()
            else:
                self.exit(0)

    def _check_terminal(self) -> None:
        stdin = sys.__stdin__
        if stdin is None or stdin.closed or not stdin.isatty():
            logger.warning("the terminal went away; stopping")
            self.leave()

    def leave(self) -> None:
        """Quit because the terminal or the operator said so (SIGHUP, SIGTERM, lost TTY).

        Textual's writer can block for ever on a terminal that has gone away
        (Textualize/textual#6692). The journal is committed as it goes, so after a grace
        period for a clean stop the process leaves regardless.
        """
        self.exit(0)
        watchdog = threading.Timer(EXIT_GRACE_S, os._exit, (0,))
        watchdog.daemon = True  # a normal exit never waits for it
        watchdog.start()

    # -- actions -----------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_rows()))

    def action_ticket(self, side: str) -> None:
        self.main.ticket(Side(side))

    def action_chart(self) -> None:
        self.main.toggle_chart()

    def action_options(self) -> None:
        self.main.toggle_options()

    def action_bots(self) -> None:
        self.main.toggle_bots()

    def action_backtest(self) -> None:
        """Open the backtest screen, or close it (Esc alone is unreliable over SSH)."""
        if isinstance(self.screen, BacktestScreen):
            self.pop_screen()
        else:
            self.push_screen(BacktestScreen(self.symbols))

    def action_focus_pane(self, pane_id: str, then: str = "") -> None:
        """Focus ``pane_id``; when it is already current, ``then`` (F9: risk, then health).

        Two named parameters, not ``*pane_ids``: Textual passes a binding only as many
        arguments as the action's signature counts, and it counts ``*args`` as one.
        """
        if then and self.main.current_pane == pane_id:
            self.main.focus_pane(then)
        else:
            self.main.focus_pane(pane_id)

    def action_maximize(self) -> None:
        self.main.toggle_maximize()

    def action_kill(self) -> None:
        self.main.request_kill()

    def action_next_theme(self) -> None:
        themes = self.tickdeck_themes
        index = themes.index(self.theme) + 1 if self.theme in themes else 0
        self.theme = themes[index % len(themes)]
        self.main.post_message(Say(f"theme {self.theme}"))

    # -- keys and the palette -----------------------------------------------------------------

    def key_display(self, binding: Binding) -> str:
        """The keys that trigger ``binding`` now, keymap applied, as the footer shows them."""
        bound = self.keymap.get(binding.id or "")
        keys = [k.strip() for k in bound.split(",")] if bound else [binding.key]
        return ", ".join(self.get_key_display(binding.with_key(key)) for key in keys)

    def key_rows(self) -> list[KeyRow]:
        """Every binding with an id: the app's, the main screen's, each pane's, the dialogs'."""
        sources: list[tuple[str, type[DOMNode]]] = [
            ("everywhere", type(self)),
            ("everywhere", MainScreen),
        ]
        main = self.main
        for node_id, where in _WHERE.items():
            sources.append((where, type(main.query_one(f"#{node_id}"))))
        sources += [("dialogs", ConfirmOrder), ("dialogs", ConfirmKill), ("keys", HelpScreen)]
        sources += [("backtest", BacktestScreen)]
        return key_rows(sources, self.keymap, self.get_key_display)

    def palette_commands(self) -> list[PaletteCommand]:
        """Every key action by its name, then commands without a key of their own."""
        main = self.main
        commands: list[PaletteCommand] = []
        seen: set[str] = set()
        for binding in class_bindings(type(self)):
            if binding.id is None or binding.id in seen or binding.action == "command_palette":
                continue
            seen.add(binding.id)
            commands.append(
                PaletteCommand(
                    binding.tooltip,
                    f"{binding.description}  ·  {self.key_display(binding)}",
                    partial(self.run_action, binding.action),
                )
            )
        commands += [
            PaletteCommand("Focus the health pane", "Health", partial(main.focus_pane, "health")),
            PaletteCommand(
                "Reset the kill switch",
                "Accept new orders again (typing reset-kill does the same)",
                main.reset_kill,
            ),
            PaletteCommand(
                "Cancel all open orders",
                "Cancel every working order now",
                partial(main.run_line, "cancel all"),
            ),
            PaletteCommand(
                "Cancel an order…",
                "Type the order id on the order line",
                partial(main.prefill, "cancel "),
            ),
            PaletteCommand(
                "Replace an order…",
                "Type the order id and the new qty or px on the order line",
                partial(main.prefill, "replace "),
            ),
            PaletteCommand(
                "Flatten all positions…",
                "Put 'flatten all' on the order line; Enter sends it",
                partial(main.prefill, "flatten all"),
            ),
        ]
        selected = main.quote_board.selected_symbol
        if selected is not None:
            commands.append(
                PaletteCommand(
                    f"Flatten {selected}…",
                    "Put a closing order for the selected symbol on the order line; Enter sends it",
                    partial(main.prefill, f"flatten {selected}"),
                )
            )
        for name in self.tickdeck_themes:
            commands.append(
                PaletteCommand(
                    f"Theme: {name}",
                    "Switch the console's colours",
                    partial(setattr, self, "theme", name),
                )
            )
        for symbol in main.quote_board.symbols:
            commands += [
                PaletteCommand(
                    f"Buy {symbol}",
                    f"Prefill a buy ticket for {symbol}",
                    partial(main.ticket, Side.BUY, symbol),
                    discover=False,
                ),
                PaletteCommand(
                    f"Sell {symbol}",
                    f"Prefill a sell ticket for {symbol}",
                    partial(main.ticket, Side.SELL, symbol),
                    discover=False,
                ),
            ]
        return commands


def make_app(
    client: EngineClient,
    settings: Settings,
    *,
    symbols: Sequence[str],
    clock_text: bool = False,
    deterministic: bool = True,
    auto_pull: bool = True,
) -> TickdeckApp:
    """The console for tests and snapshots: deterministic unless told otherwise.

    Build ``client`` as ``LocalClient(engine, run_feed=False)`` over an engine with a
    fixed seed and step ``engine.driver`` by hand: the same steps give the same screens.
    """
    return TickdeckApp(
        client,
        settings,
        symbols=symbols,
        clock_text=clock_text,
        deterministic=deterministic,
        auto_pull=auto_pull,
    )


def run_console(client: EngineClient, settings: Settings) -> int:
    """Run the console in this terminal until the trader quits; the exit status."""
    return asyncio.run(_run(client, settings))


async def _run(client: EngineClient, settings: Settings) -> int:
    # The configured watchlist keeps its order on the quote board; otherwise the engine's symbols.
    symbols = settings.symbols or await client.symbols()
    app = TickdeckApp(client, settings, symbols=symbols, clock_text=True, watch_terminal=True)
    loop = asyncio.get_running_loop()
    # A closed SSH session sends SIGHUP; stop the engine and leave rather than die mid-write.
    handled = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

    for sig in handled:
        loop.add_signal_handler(sig, app.leave)
    try:
        await app.run_async(mouse=settings.console.mouse)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await app.stop_client()
    return app.return_code or 0
