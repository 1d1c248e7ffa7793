"""Order entry: the order line (the engine's order language), symbol completion, a live preview.

The preview under the line is recomputed on every change by the engine
(``client.preview``): the canonical order, its notional, how far its price is
from the touch, buying power after, and every risk check that would fail.
Nothing is sent until Enter, which the main screen handles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import ClassVar

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Input

from engine.client import EngineClient, Preview
from engine.core.models import Side
from engine.orders.language import complete_symbol
from tui.messages import Say
from tui.widgets.format import fmt_money, fmt_pct, fmt_price, fmt_qty

CHECK_LINES = 3  # failed risk checks listed under the order's line (max-height 4 less one)
MAX_OTHERS = 8  # other matching symbols named on the message line after a completion
PLACEHOLDER = "buy 100 AAPL lmt 187.50 gtc  ·  b 10 nvda 450  ·  cancel #12  ·  F1 keys"

_ORDER_VERBS = frozenset({"b", "buy", "s", "sell"})
_SYMBOL_START = re.compile(r"[A-Za-z][A-Za-z0-9./]*")
_TOKEN = re.compile(r"\S+")


def symbol_completion(line: str, symbols: Iterable[str]) -> tuple[int, str] | None:
    """Where the symbol being typed at the end of ``line`` starts, and the first symbol it fits.

    A symbol is being typed when the last word is the third of an order
    (``buy 100 aa``) or the second of a flatten (``flatten ms``). None when
    the line ends in a space, the word is not the start of a symbol, or no
    symbol starts with it.
    """
    if not line or line[-1].isspace():
        return None
    words = list(_TOKEN.finditer(line))
    verb = words[0].group().lower()
    position = len(words)
    if not ((verb in _ORDER_VERBS and position == 3) or (verb == "flatten" and position == 2)):
        return None
    typed = words[-1]
    if not _SYMBOL_START.fullmatch(typed.group()):
        return None
    matches = complete_symbol(typed.group(), symbols)
    return (typed.start(), matches[0]) if matches else None


class SymbolSuggester(Suggester):
    """Shows the rest of the first matching symbol as ghost text (→ or Tab accepts it)."""

    def __init__(self) -> None:
        # Symbols arrive from the engine after mount, so answers must not be cached.
        super().__init__(use_cache=False, case_sensitive=True)
        self.symbols: Sequence[str] = ()

    async def get_suggestion(self, value: str) -> str | None:
        found = symbol_completion(value, self.symbols)
        if found is None:
            return None
        start, symbol = found
        typed = len(value) - start
        return value + symbol[typed:] if len(symbol) > typed else None


class OrderLine(Input):
    """The order line. Tab completes a symbol, ↑/↓ recall earlier lines, Enter submits."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "tab",
            "complete",
            "Complete",
            show=False,
            id="order.complete",
            tooltip="Complete the symbol being typed; with nothing to complete, Tab moves focus",
        ),
        Binding(
            "up",
            "history_back",
            "Previous line",
            show=False,
            id="order.history_back",
            tooltip="Recall the previous line sent from the order line",
        ),
        Binding(
            "down",
            "history_forward",
            "Next line",
            show=False,
            id="order.history_forward",
            tooltip="Recall the next line sent (past the newest: what you were typing)",
        ),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        self.suggester_of_symbols = SymbolSuggester()
        super().__init__(
            placeholder=PLACEHOLDER,
            suggester=self.suggester_of_symbols,
            select_on_focus=False,
            compact=True,
            id=id,
        )
        self.history: list[str] = []
        self._recall: int | None = None  # index into history while recalling
        self._draft = ""  # what was typed before recalling began

    @property
    def symbols(self) -> Sequence[str]:
        return self.suggester_of_symbols.symbols

    @symbols.setter
    def symbols(self, symbols: Sequence[str]) -> None:
        self.suggester_of_symbols.symbols = tuple(symbols)

    def prefill(self, text: str) -> None:
        """Put ``text`` on the line with the cursor at its end, and focus the line."""
        self._recall = None
        self._set(text)
        self.focus()

    def remember(self, line: str) -> None:
        """Keep a sent line for recall (a repeat of the newest is kept once)."""
        if not self.history or self.history[-1] != line:
            self.history.append(line)
        self._recall = None

    def _set(self, text: str) -> None:
        self.value = text
        self.cursor_position = len(text)

    def action_complete(self) -> None:
        found = symbol_completion(self.value, self.symbols) if self.cursor_at_end else None
        if found is None:
            raise SkipAction()
        start, symbol = found
        typed = self.value[start:]
        self._set(f"{self.value[:start]}{symbol} ")
        others = [s for s in complete_symbol(typed, self.symbols) if s != symbol]
        if others:
            shown = " ".join(others[:MAX_OTHERS]) + (" …" if len(others) > MAX_OTHERS else "")
            self.post_message(Say(f"{typed.upper()} also matches {shown}"))

    def action_history_back(self) -> None:
        if not self.history:
            return
        if self._recall is None:
            self._draft = self.value
            self._recall = len(self.history) - 1
        else:
            self._recall = max(0, self._recall - 1)
        self._set(self.history[self._recall])

    def action_history_forward(self) -> None:
        if self._recall is None:
            return
        self._recall += 1
        if self._recall >= len(self.history):
            self._recall = None
            self._set(self._draft)
        else:
            self._set(self.history[self._recall])


def _ticks(ticks: Decimal) -> str:
    """A signed tick count to a tenth at most: ``+5``, ``-13,245``, ``+2.5``."""
    rounded = ticks.quantize(Decimal("0.1"))
    sign = "+" if rounded > 0 else "-" if rounded < 0 else ""
    return sign + fmt_qty(abs(rounded))


def _dollars(amount: Decimal) -> str:
    return f"-${fmt_money(-amount)}" if amount < 0 else f"${fmt_money(amount)}"


def render_preview(preview: Preview | None, check_lines: int = CHECK_LINES) -> Content:
    """The preview lines for ``preview`` (None: the line is empty, so a hint).

    The order's line comes first, then the risk checks that would fail, one whole
    check a line in at most ``check_lines`` lines: when they do not all fit, the
    last line says how many more there are.
    """
    if preview is None:
        return Content.styled(
            "Type an order and press Enter.  F2/F3 ticket the selected quote.", "$text-muted"
        )
    if preview.error is not None:
        return _render_error(preview)
    if preview.request is None:
        return Content.assemble(
            ("→ ", "$text-accent"), preview.summary, ("   Enter sends it", "$text-muted")
        )
    request = preview.request
    parts: list[str | tuple[str, str]] = [("→ ", "$text-accent"), (preview.summary, "bold")]
    if preview.notional is not None:
        parts += [("   notional ", "$text-muted"), _dollars(preview.notional)]
    touch = "ask" if request.side is Side.BUY else "bid"
    if preview.reference_price is not None:
        reference = fmt_price(preview.reference_price)
        if preview.distance_pct is not None and preview.distance_ticks is not None:
            parts += [
                ("   ", ""),
                f"{fmt_pct(preview.distance_pct)} {_ticks(preview.distance_ticks)} ticks",
                (f" vs {touch} {reference}", "$text-muted"),
            ]
        else:
            parts += [(f"   at the {touch} ", "$text-muted"), reference]
    if preview.buying_power_after is not None:
        parts += [("   buying power after ", "$text-muted"), _dollars(preview.buying_power_after)]
    return Content("\n").join([Content.assemble(*parts), *_render_checks(preview, check_lines)])


def _render_checks(preview: Preview, check_lines: int) -> list[Content]:
    violations = preview.violations
    if not violations:
        return [Content.styled("✔ passes every risk check", "$text-success")]
    room = max(1, check_lines)
    shown = violations if len(violations) <= room else violations[: room - 1]
    lines = [
        Content.styled(f"! {v.message} (needs confirmation)", "$text-warning")
        if v.soft
        else Content.styled(f"✗ {v.message}", "bold $text-error")
        for v in shown
    ]
    if len(shown) < len(violations):
        lines.append(Content.styled(f"… and {len(violations) - len(shown)} more", "$text-error"))
    return lines


def _render_error(preview: Preview) -> Content:
    line = preview.line
    position = preview.error_position if preview.error_position is not None else len(line)
    token = preview.error_token
    bad = "reverse bold $text-error"
    if token:
        typed = Content.assemble(line[:position], (token, bad), line[position + len(token) :])
    else:
        # Something is missing: mark the place it should go.
        typed = Content.assemble(line[:position].rstrip(), " ", ("?", bad))
    return Content.assemble(
        ("✗ ", "bold $text-error"), typed, "\n", (f"  {preview.error}", "$text-error")
    )


class OrderPreview(Widget):
    """What the line would do, under the line: one line each, clipped with an ellipsis, in
    as many lines as the preview's ``max-height`` allows (fewer on a short terminal)."""

    DEFAULT_CSS = """
    OrderPreview {
        height: auto;
        min-height: 2;
        max-height: 4;
        background: $surface;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    # Per-instance state (assigned on the instance); this is the initial value.
    _preview: Preview | None = None

    def show(self, preview: Preview | None) -> None:
        """Show ``preview`` (None: the line is empty)."""
        self._preview = preview
        self.refresh(layout=True)

    def render(self) -> Content:
        max_height = self.styles.max_height
        lines = int(max_height.value) if max_height is not None else CHECK_LINES + 1
        return render_preview(self._preview, lines - 1)


class OrderEntry(Vertical):
    """The order line with its preview; asks ``client`` for symbols and previews."""

    DEFAULT_CSS = """
    OrderEntry {
        height: auto;
        & > OrderLine { margin: 0 0; padding: 0 1; }
    }
    """

    def __init__(self, client: EngineClient, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.client = client
        self.preview: Preview | None = None  # the preview shown, for the line as it is now

    @property
    def line(self) -> OrderLine:
        return self.query_one(OrderLine)

    def compose(self) -> ComposeResult:
        yield OrderLine(id="order-line")
        yield OrderPreview(id="order-preview")

    async def on_mount(self) -> None:
        self.line.symbols = await self.client.symbols()

    @on(Input.Changed, "#order-line")
    def _line_changed(self, event: Input.Changed) -> None:
        self._update_preview(event.value)

    def refresh_preview(self) -> None:
        """Recompute the preview (the market moved under it)."""
        if self.line.value.strip():
            self._update_preview(self.line.value)

    @property
    def previewed_symbol(self) -> str | None:
        request = self.preview.request if self.preview is not None else None
        return request.symbol if request is not None else None

    @work(exclusive=True, group="order-preview")
    async def _update_preview(self, line: str) -> None:
        preview = await self.client.preview(line) if line.strip() else None
        # A newer keystroke may have changed the line while the engine was answering.
        if line == self.line.value:
            self.preview = preview
            self.query_one(OrderPreview).show(preview)
