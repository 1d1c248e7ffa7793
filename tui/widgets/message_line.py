"""The message line: the newest outcome or engine alert, stamped with engine time."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from engine.core.events import Alert, Severity
from tui.messages import Tone
from tui.widgets.format import fmt_time

_MARKS = {Tone.INFO: "·", Tone.SUCCESS: "✔", Tone.WARNING: "!", Tone.ERROR: "✗"}
_TONE_OF = {Severity.INFO: Tone.INFO, Severity.WARNING: Tone.WARNING, Severity.ERROR: Tone.ERROR}


class MessageLine(Static):
    """One line; each tone has a mark (✔ ✗ !) so it reads without colour too (NO_COLOR)."""

    DEFAULT_CSS = """
    MessageLine {
        height: 1;
        padding: 0 1;
        background: $surface;
        color: $text;
        &.-success { color: $text-success; }
        &.-warning { color: $text-warning; }
        &.-error { color: $text-error; text-style: bold; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.text = ""
        self.tone = Tone.INFO

    def show(self, text: str, tone: Tone = Tone.INFO, ts_ns: int | None = None) -> None:
        """Replace the line with ``text``; ``ts_ns`` (engine time) is shown as New York time."""
        self.text, self.tone = text, tone
        stamp = (f"{fmt_time(ts_ns)} ", "$text-muted") if ts_ns is not None else ""
        self.update(Content.assemble(stamp, f"{_MARKS[tone]} ", text))
        for each in Tone:
            self.set_class(each is tone, f"-{each.value}")

    def show_alerts(self, alerts: tuple[Alert, ...]) -> None:
        """The newest of ``alerts``, saying how many more arrived with it.

        An alert that only repeats what the line already says (the outcome of the
        trader's own command, which raised it) leaves the line as it is.
        """
        if not alerts:
            return
        newest = alerts[-1]
        message = without_echo(newest.message)
        if len(alerts) == 1 and self.text and message in self.text:
            return
        more = f"  (+{len(alerts) - 1} more in the log)" if len(alerts) > 1 else ""
        self.show(message + more, _TONE_OF[newest.severity], newest.ts_ns)


def without_echo(message: str) -> str:
    """``message`` without a lead-in that its own detail repeats: ``kill switch engaged: kill
    switch engaged by the trader`` reads ``kill switch engaged by the trader``."""
    head, colon, rest = message.partition(": ")
    if colon and rest.lower().startswith(head.lower()):
        return rest
    return message
