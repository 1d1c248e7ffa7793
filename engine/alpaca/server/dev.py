"""``tickdeck dev alpaca-server``: run the local Alpaca server in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from loguru import logger

from engine.alpaca.server.app import AlpacaServer

DEV_KEY_ID = "PKTEST"
DEV_SECRET_KEY = "SECRET"


def export_lines(server: AlpacaServer, key_id: str, secret_key: str) -> list[str]:
    """The shell lines that point tickdeck (or alpaca-py) at ``server``: local test keys only."""
    return [
        f"export APCA_API_BASE_URL={server.base_url}",
        f"export APCA_API_DATA_URL={server.data_url}",
        f"export APCA_API_STREAM_URL={server.stream_url}",
        f"export APCA_API_KEY_ID={key_id}",
        f"export APCA_API_SECRET_KEY={secret_key}",
    ]


async def serve(*, port: int, seed: int, symbols: Sequence[str], speed: float, out: TextIO) -> None:
    """Start the server, print what to export, and serve until cancelled."""
    server = AlpacaServer(
        port=port,
        seed=seed,
        symbols=tuple(symbols),
        key_id=DEV_KEY_ID,
        secret_key=DEV_SECRET_KEY,
        speed=speed,
    )
    await server.start()
    try:
        lines = [
            "local Alpaca server running; in another shell:",
            *(f"  {line}" for line in export_lines(server, DEV_KEY_ID, DEV_SECRET_KEY)),
            f"faults: curl -X POST {server.base_url}/_faults -d '{{\"fault\": ...}}'",
            "Ctrl-C stops it.",
        ]
        out.write("\n".join(lines) + "\n")
        out.flush()
        await asyncio.Event().wait()
    finally:
        await server.stop()


def run_dev_server(
    *, port: int, seed: int, symbols: Sequence[str], speed: float, out: TextIO = sys.stdout
) -> int:
    """Run until Ctrl-C; the exit status."""
    try:
        asyncio.run(serve(port=port, seed=seed, symbols=symbols, speed=speed, out=out))
    except KeyboardInterrupt:
        logger.info("alpaca server: stopped")
    return 0
