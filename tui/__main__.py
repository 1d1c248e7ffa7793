"""The ``tickdeck`` command: the console when no subcommand is given, else ``engine.cli``.

Textual is imported only when the console opens, after ``TEXTUAL_FPS`` is
set: Textual reads it once, at import, and ``tickdeck engine`` should not pay
for importing a UI it never shows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.cli import EXIT_INPUT
from engine.cli import main as cli_main

if TYPE_CHECKING:
    from engine.client import EngineClient
    from engine.config import Settings


def open_console(settings: Settings, make_client: Callable[[], EngineClient]) -> int:
    """Run the console until the trader quits; the exit status for the shell."""
    # The environment wins, so a trader can still set TEXTUAL_FPS for one session.
    os.environ.setdefault("TEXTUAL_FPS", str(settings.console.fps))
    from tui.app import run_console
    from tui.themes import ThemeError, check_theme_name

    try:
        check_theme_name(settings.console.theme)
    except ThemeError as error:
        print(f"tickdeck: {error}", file=sys.stderr)
        return EXIT_INPUT
    return run_console(make_client(), settings)


def main(argv: list[str] | None = None) -> int:
    """The console script."""
    return cli_main(argv, console=open_console)


if __name__ == "__main__":
    sys.exit(main())
