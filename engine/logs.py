"""Logging setup: a human console sink and a rotating JSON file, with secrets scrubbed.

Every record passes through one patcher that replaces any registered secret
(API keys, tokens) with a mask before any sink sees it, so a key that slips
into an f-string or an exception message never reaches a terminal or a file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loguru import logger

_secrets: set[str] = set()
MASK = "********"


def register_secrets(values: Iterable[str | None]) -> None:
    """Values that must never appear in a log line (short values are ignored: they would mask noise)."""
    _secrets.update(v for v in values if v and len(v) >= 6)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _patch(record: dict[str, Any]) -> None:
    if _secrets:
        record["message"] = scrub(record["message"])
        if record["exception"] is not None:
            # Exception text is rendered later from the exception object; scrub its args now.
            exc = record["exception"].value
            if exc is not None and exc.args:
                exc.args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)


def configure_logging(
    *,
    level: str = "INFO",
    log_dir: Path | None = None,
    json_file: bool = True,
    rotation: str = "20 MB",
    retention: int = 10,
    console: bool = True,
) -> Path | None:
    """Install the sinks; returns the JSON log file path (None when file logging is off)."""
    logger.remove()
    logger.configure(patcher=_patch)
    if console:
        logger.add(
            sys.stderr,
            level=level,
            format="<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}",
            backtrace=False,
            diagnose=False,
        )
    if not json_file or log_dir is None:
        return None
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "tickdeck.jsonl"
    logger.add(
        path,
        level="DEBUG",
        serialize=True,
        rotation=rotation,
        retention=retention,
        enqueue=False,
        backtrace=False,
        diagnose=False,  # diagnose would print local variables, keys included
    )
    return path
