"""Brokers: the Broker protocol and its implementations (the sim venue; Alpaca later)."""

from engine.broker.base import Broker

__all__ = ["Broker"]
