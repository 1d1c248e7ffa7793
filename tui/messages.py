"""Messages any part of the console may post; the main screen handles them."""

from __future__ import annotations

from enum import StrEnum

from textual.message import Message


class Tone(StrEnum):
    """How a line on the message line reads: plain news, a success, a warning or an error."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


class Say(Message):
    """Show ``text`` on the message line (the newest line replaces the one before)."""

    def __init__(self, text: str, tone: Tone = Tone.INFO) -> None:
        super().__init__()
        self.text = text
        self.tone = tone
