"""The command palette (ctrl+p): every console action, by name, beside Textual's system commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(slots=True, frozen=True)
class PaletteCommand:
    """One entry: its title, a line of help, and what it does.

    ``discover`` entries are listed before anything is typed; the rest (a buy
    and a sell per symbol) only match a search.
    """

    title: str
    help: str
    callback: Callable[[], Awaitable[object] | object]
    discover: bool = True


@runtime_checkable
class CommandSource(Protocol):
    """What the palette asks the app for (the app builds the list from its bindings and state)."""

    def palette_commands(self) -> Sequence[PaletteCommand]: ...


class TickdeckCommands(Provider):
    """Tickets, cancel and replace, the kill switch, panes, chart, themes, keys."""

    def _commands(self) -> Sequence[PaletteCommand]:
        app = self.app
        return app.palette_commands() if isinstance(app, CommandSource) else ()

    async def discover(self) -> Hits:
        for command in self._commands():
            if command.discover:
                yield DiscoveryHit(command.title, command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    command.callback,
                    text=command.title,
                    help=command.help,
                )
