"""Where Alpaca lives and which keys open it: one frozen record resolved from the environment.

Alpaca's conventional variables override the defaults: ``APCA_API_BASE_URL`` is the
trading REST API, and the trading stream is the same host with ``/stream`` (http
becomes ws, https becomes wss); ``APCA_API_DATA_URL`` is the market-data REST API;
``APCA_API_STREAM_URL`` is the market-data stream's base, to which the feed's path
(``/v2/iex``, ``/v2/sip``) is appended. Keys come from ``APCA_API_KEY_ID`` and
``APCA_API_SECRET_KEY`` unless given. Paper is the default; the keys never appear
in ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.core.errors import ConfigError

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
DATA_STREAM_URL = "wss://stream.data.alpaca.markets"
FEEDS = ("iex", "sip", "delayed_sip")


@dataclass(slots=True, frozen=True)
class AlpacaEndpoints:
    """Resolved Alpaca endpoints and keys. ``data_stream_url`` already ends with the feed's path."""

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    trading_url: str
    trading_stream_url: str
    data_url: str
    data_stream_url: str
    feed: str = "iex"
    paper: bool = True


def trading_stream_url(trading_url: str) -> str:
    """The trade_updates websocket for a trading REST base: same host, ``/stream``, ws(s)."""
    base = trading_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    else:
        raise ConfigError("APCA_API_BASE_URL", f"'{trading_url}' is not an http or https URL")
    return base + "/stream"


def resolve_endpoints(
    env: Mapping[str, str] | None = None,
    *,
    live: bool = False,
    feed: str = "iex",
    key_id: str | None = None,
    secret_key: str | None = None,
    trading_url: str | None = None,
    data_url: str | None = None,
    stream_url: str | None = None,
) -> AlpacaEndpoints:
    """Resolve endpoints: explicit arguments beat the ``APCA_*`` variables, which beat the defaults.

    ``env`` defaults to ``os.environ``. Missing keys are a ``ConfigError`` naming the variable.
    """
    env = os.environ if env is None else env
    key = key_id or env.get("APCA_API_KEY_ID", "")
    secret = secret_key or env.get("APCA_API_SECRET_KEY", "")
    if not key:
        raise ConfigError("APCA_API_KEY_ID", "no Alpaca key id is set")
    if not secret:
        raise ConfigError("APCA_API_SECRET_KEY", "no Alpaca secret key is set")
    feed = feed.strip().lower()
    if feed not in FEEDS:
        raise ConfigError("feed", f"feed must be one of {', '.join(FEEDS)}, got '{feed}'")
    default_trading = LIVE_TRADING_URL if live else PAPER_TRADING_URL
    trading = (trading_url or env.get("APCA_API_BASE_URL") or default_trading).rstrip("/")
    data = (data_url or env.get("APCA_API_DATA_URL") or DATA_URL).rstrip("/")
    stream = (stream_url or env.get("APCA_API_STREAM_URL") or DATA_STREAM_URL).rstrip("/")
    return AlpacaEndpoints(
        key_id=key,
        secret_key=secret,
        trading_url=trading,
        trading_stream_url=trading_stream_url(trading),
        data_url=data,
        data_stream_url=f"{stream}/v2/{feed}",
        feed=feed,
        paper=not live,
    )
