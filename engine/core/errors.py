"""Typed errors. Each carries one human sentence, which is what the trader sees."""

from __future__ import annotations


class TickdeckError(Exception):
    """Base class: ``str(error)`` is a complete sentence for the trader."""


class InputError(TickdeckError):
    """Bad input from a person: an order line, a config value, a CLI flag."""


class ConfigError(InputError):
    """An invalid configuration value; ``key`` names the setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config: {key}: {message}")
        self.key = key


class DataError(TickdeckError):
    """A corrupt or unreadable data row; ``where`` is "file:line"."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


class BrokerError(TickdeckError):
    """The broker refused or failed a request; the message is the broker's."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached right now."""


class BrokerRejected(BrokerError):
    """The broker answered with an error: ``status`` is the HTTP status, ``message`` its sentence."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class RateLimited(BrokerRejected):
    """The broker answered 429; ``retry_after_s`` is how long it asked us to wait, if it said."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(429, message)
        self.retry_after_s = retry_after_s
