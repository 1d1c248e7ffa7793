"""Alpaca: market-data stream, trading, and a local Alpaca-protocol server."""
