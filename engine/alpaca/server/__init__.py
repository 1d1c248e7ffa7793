"""A local Alpaca-protocol server for tests and demos (``tickdeck dev alpaca-server``)."""

from engine.alpaca.server.app import AlpacaServer
from engine.alpaca.server.faults import FaultInjector

__all__ = ["AlpacaServer", "FaultInjector"]
