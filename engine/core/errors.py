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
