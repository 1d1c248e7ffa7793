"""The backtest screen (ctrl+o): a bot on history, run beside the live console.

Choose the bot, symbols, dates, bar size and parameters, press Enter (or Run) and watch the
progress bar; the metrics, the equity and drawdown plot and the trades fill in when it is done.
The run uses ``engine.backtest`` in a worker thread of the console's own process: it needs
history, not the live engine, so it works the same attached to a remote engine. ctrl+o again
(or Esc) goes back to the trading screen.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, ProgressBar, Select, Static

from engine.backtest.cli import metrics_text
from engine.backtest.plot import terminal_plot
from engine.backtest.runner import TIMEFRAMES, BacktestResult, BacktestSpec, run_backtest
from engine.bots.settings import BOT_KINDS
from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.core.errors import TickdeckError
from tui.widgets.format import MUTED, Column, header_content, row_content, sign_style

TRADES_SHOWN = 200


class BacktestScreen(Screen[None]):
    """A form, a progress bar and the results of the last run."""

    DEFAULT_CSS = """
    BacktestScreen {
        layout: vertical;
        background: $background;
    }
    BacktestScreen #form {
        height: auto;
        padding: 0 1;
        border: round $primary;
        border-title-color: $text-primary;
    }
    BacktestScreen #form Horizontal {
        height: auto;
    }
    BacktestScreen #form Label {
        width: 8;
        padding: 1 0 0 0;
        color: $text-muted;
    }
    BacktestScreen #form Input, BacktestScreen #form Select {
        width: 1fr;
    }
    BacktestScreen #bot, BacktestScreen #timeframe {
        width: 22;
    }
    BacktestScreen #run {
        margin: 0 1;
        min-width: 10;
    }
    BacktestScreen #status {
        height: 1;
        padding: 0 1;
    }
    BacktestScreen #status.-error {
        color: $error;
    }
    BacktestScreen #status.-success {
        color: $success;
    }
    BacktestScreen ProgressBar {
        padding: 0 1;
    }
    BacktestScreen #results {
        height: 1fr;
        border: round $foreground 25%;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "app.pop_screen",
            "Back",
            id="backtest.close",
            tooltip="Back to the trading screen",
        ),
    ]

    def __init__(self, symbols: list[str]) -> None:
        super().__init__()
        self._symbols = symbols

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            with Horizontal():
                yield Label("bot")
                yield Select(
                    [(kind, kind) for kind in BOT_KINDS],
                    value="momentum",
                    allow_blank=False,
                    id="bot",
                )
                yield Label("symbols")
                yield Input(",".join(self._symbols[:2]), id="symbols")
            with Horizontal():
                yield Label("from")
                yield Input("2020-01-02", id="start")
                yield Label("to")
                yield Input("2020-12-31", id="end")
                yield Label("bars")
                yield Select(
                    [(t, t) for t in TIMEFRAMES], value="1Day", allow_blank=False, id="timeframe"
                )
            with Horizontal():
                yield Label("params")
                yield Input(placeholder="fast=10 slow=30", id="params")
                yield Button("Run", id="run", variant="primary")
        yield Static("", id="status")
        yield ProgressBar(total=100, show_eta=False, id="progress")
        with VerticalScroll(id="results"):
            yield Static("", id="metrics")
            yield Static("", id="plot")
            yield Static("", id="trades")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#form").border_title = "Backtest"
        if getattr(self.app, "deterministic", False):  # snapshot tests: no blinking cursor
            for field in self.query(Input):
                field.cursor_blink = False
        self.query_one("#symbols", Input).focus()

    def spec(self) -> BacktestSpec:
        """The form as a spec; ``TickdeckError`` (one sentence) when a field is wrong."""
        params = []
        for term in self.query_one("#params", Input).value.split():
            key, sep, value = term.partition("=")
            if not sep or not key or not value:
                raise _FormError(f"parameter '{term}' must be written key=value")
            params.append((key.lower(), value))
        symbols = tuple(
            s.strip().upper() for s in self.query_one("#symbols", Input).value.split(",")
        )
        return BacktestSpec(
            bot=str(self.query_one("#bot", Select).value),
            symbols=tuple(s for s in symbols if s),
            start=_date(self.query_one("#start", Input).value, "from"),
            end=_date(self.query_one("#end", Input).value, "to"),
            timeframe=str(self.query_one("#timeframe", Select).value),
            params=tuple(params),
        )

    @on(Input.Submitted)
    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        try:
            spec = self.spec()
        except TickdeckError as error:
            self._status(str(error), "error")
            return
        self.query_one(ProgressBar).update(total=100, progress=0)
        self._status(f"running {spec.bot} on {', '.join(spec.symbols)} ...", "")
        self._run(spec)

    @work(thread=True, exclusive=True, group="backtest")
    def _run(self, spec: BacktestSpec) -> None:
        def report(done: int, total: int) -> None:
            self.app.call_from_thread(
                self.query_one(ProgressBar).update, total=total, progress=done
            )

        try:
            result = run_backtest(spec, progress=report)
        except TickdeckError as error:
            self.app.call_from_thread(self._status, str(error), "error")
            return
        self.app.call_from_thread(self._show, result)

    def _show(self, result: BacktestResult) -> None:
        m = result.metrics
        self._status(
            f"{result.bars:,} bars · {m.trades} trades · {m.total_return:+.2%} · "
            f"{'; '.join(result.sources) or 'given bars'}",
            "success",
        )
        self.query_one("#metrics", Static).update(Text(metrics_text(m)))
        self.query_one("#plot", Static).update(Text(terminal_plot(result.curve, width=90)))
        self.query_one("#trades", Static).update(_trades_content(result))

    def _status(self, text: str, tone: str) -> None:
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_classes(f"-{tone}" if tone else "")


class _FormError(TickdeckError):
    """A backtest form field the runner cannot use."""


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _FormError(f"'{text}' in '{field}' is not a date (YYYY-MM-DD)") from None


_TRADE_COLUMNS = (
    Column("symbol", "symbol", 7, left=True),
    Column("qty", "qty", 9),
    Column("opened", "opened", 16, left=True),
    Column("entry", "entry", 10),
    Column("closed", "closed", 16, left=True),
    Column("exit", "exit", 10),
    Column("pnl", "P&L", 13),
)


def _trades_content(result: BacktestResult) -> Content:
    def when(ts_ns: int) -> str:
        return ns_to_datetime(ts_ns, NEW_YORK).strftime("%Y-%m-%d %H:%M")

    lines = [Content(f"trades ({len(result.trips)})"), header_content(_TRADE_COLUMNS)]
    for trip in result.trips[:TRADES_SHOWN]:
        cells = (
            trip.symbol,
            f"{trip.qty:+}",
            when(trip.entry_ns),
            f"{trip.entry_price:.2f}",
            when(trip.exit_ns),
            f"{trip.exit_price:.2f}",
            f"{trip.pnl:+,.2f}",
        )
        styles = ("", "", MUTED, "", MUTED, "", sign_style(trip.pnl))
        lines.append(row_content(list(zip(_TRADE_COLUMNS, cells, styles, strict=True))))
    return Content("\n").join(lines)
