"""The history store's error, in a module of its own so that catching it imports no S3 client."""

from __future__ import annotations

from engine.core.errors import TickdeckError


class StoreUnavailable(TickdeckError):
    """The history store cannot be reached or refused a request; the message says which and why."""
