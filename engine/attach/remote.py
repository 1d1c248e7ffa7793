"""The console side of attaching: ``RemoteClient``, an ``EngineClient`` over the unix socket.

The console cannot tell it from a ``LocalClient``: the same calls return the same
records. Stopping it only detaches; the engine and its bots keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import date
from pathlib import Path
from typing import Any

from loguru import logger
from websockets.asyncio.client import ClientConnection, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from engine.attach import protocol
from engine.attach.codec import MAX_MESSAGE_BYTES, CodecError, decode, encode
from engine.client import (
    VAR_PATHS,
    VAR_SEED,
    BotsSnapshot,
    ChainSnapshot,
    Cursor,
    EngineSnapshot,
    Outcome,
    PortfolioRisk,
    Preview,
    SmileSnapshot,
)
from engine.core.errors import TickdeckError
from engine.core.models import Bar, OrderRequest

CONNECT_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0  # detaching never waits long on an engine busy with other work


class AttachError(TickdeckError):
    """The engine could not be reached, refused this console, or went away."""


class RemoteClient:
    """An engine in another process, reached over its attach socket."""

    def __init__(self, path: Path, *, token: str | None = None) -> None:
        self.path = path
        self._token = token
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._connecting: asyncio.Lock | None = None
        self._lost: str | None = None
        self.mode = ""  # the engine's mode, from its welcome

    # -- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Attach (once): connect, say hello, wait for the welcome."""
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._ws is None:
                await self._connect()

    async def _connect(self) -> None:
        where = self.path
        try:
            ws = await asyncio.wait_for(
                unix_connect(
                    str(where),
                    uri="ws://localhost/attach",
                    max_size=MAX_MESSAGE_BYTES,
                    compression=None,
                    close_timeout=CLOSE_TIMEOUT_S,
                ),
                CONNECT_TIMEOUT_S,
            )
        except (FileNotFoundError, ConnectionRefusedError):
            raise AttachError(
                f"no engine is listening at {where}; start one with `tickdeck engine --daemon`"
            ) from None
        except InvalidStatus as error:
            body = error.response.body.decode(errors="replace").strip()
            raise AttachError(f"the engine refused this console: {body}") from None
        except (OSError, TimeoutError, WebSocketException) as error:
            raise AttachError(f"cannot attach to {where}: {error}") from None
        try:
            await ws.send(encode(protocol.hello(self._token)))
            reply = decode(await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT_S))
        except (ConnectionClosed, TimeoutError, CodecError) as error:
            await ws.close()
            raise AttachError(f"the engine did not welcome this console: {error}") from None
        if not isinstance(reply, dict) or reply.get("type") != "welcome":
            await ws.close()
            reason = reply.get("error") if isinstance(reply, dict) else None
            raise AttachError(f"the engine refused this console: {reason or 'no welcome'}")
        self.mode = str(reply.get("mode", ""))
        self._ws = ws
        self._lost = None
        self._reader = asyncio.create_task(self._read(ws), name="attach-reader")
        logger.info("attached to the engine at {} ({} mode)", where, self.mode)

    async def stop(self) -> None:
        """Detach. The engine, its orders and its bots carry on.

        A call after this fails with the reason rather than attaching again: a console's
        refresh timer firing while it quits must not bring the connection back.
        """
        ws, self._ws = self._ws, None
        self._lost = "detached from the engine"
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._fail_pending("detached from the engine")

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                try:
                    message = decode(frame) if isinstance(frame, bytes) else None
                except CodecError as error:
                    logger.warning("attach: unreadable answer from the engine: {}", error)
                    continue
                if not isinstance(message, dict):
                    continue
                call_id = message.get("id")
                future = self._pending.pop(call_id, None) if isinstance(call_id, int) else None
                if future is None or future.done():
                    if message.get("type") == "error":
                        logger.warning("attach: the engine said: {}", message.get("error"))
                    continue
                if message.get("type") == "result":
                    future.set_result(message.get("value"))
                else:
                    future.set_exception(AttachError(str(message.get("error", "refused"))))
        except ConnectionClosed:
            pass
        if self._ws is ws:
            self._ws = None
            self._lost = "the connection to the engine was lost"
            logger.warning("attach: {}", self._lost)
        self._fail_pending(self._lost or "detached from the engine")

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(AttachError(why))

    async def call(self, op: str, **args: Any) -> Any:
        """Send one call and wait for its answer; an ``AttachError`` carries a refusal's reason."""
        if self._ws is None:
            if self._lost is not None:
                raise AttachError(self._lost)
            await self.start()
        ws = self._ws
        assert ws is not None
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            await ws.send(encode(protocol.call(call_id, op, args)))
        except ConnectionClosed:
            self._pending.pop(call_id, None)
            raise AttachError("the connection to the engine was lost") from None
        return await future

    async def _command(self, op: str, **args: Any) -> Outcome:
        """A command's outcome; a refusal or a lost engine is a failed outcome with the reason,
        as the console shows any other."""
        try:
            return await self.call(op, **args)
        except AttachError as error:
            return Outcome(False, str(error))

    # -- EngineClient -----------------------------------------------------------------------

    async def snapshot(self, cursor: Cursor) -> EngineSnapshot:
        return await self.call("snapshot", cursor=cursor)

    async def symbols(self) -> list[str]:
        return list(await self.call("symbols"))

    async def bars(self, symbol: str) -> list[Bar]:
        return list(await self.call("bars", symbol=symbol))

    async def history(self, symbol: str) -> list[Bar]:
        return list(await self.call("history", symbol=symbol))

    async def preview(self, line: str) -> Preview:
        return await self.call("preview", line=line)

    async def execute(self, line: str, *, confirmed: bool = False) -> Outcome:
        return await self._command("execute", line=line, confirmed=confirmed)

    async def submit(self, request: OrderRequest, *, confirmed: bool = False) -> Outcome:
        return await self._command("submit", request=request, confirmed=confirmed)

    async def cancel(self, order_ref: str) -> Outcome:
        return await self._command("cancel", order_ref=order_ref)

    async def kill(self, *, flatten: bool = False) -> Outcome:
        return await self._command("kill", flatten=flatten)

    async def reset_kill(self) -> Outcome:
        return await self._command("reset_kill")

    async def option_chain(self, symbol: str) -> ChainSnapshot | None:
        return await self.call("option_chain", symbol=symbol)

    async def option_smile(self, symbol: str, expiry: date) -> SmileSnapshot | None:
        return await self.call("option_smile", symbol=symbol, expiry=expiry)

    async def portfolio_risk(
        self,
        *,
        horizon_days: float = 1.0,
        confidence: float = 0.99,
        paths: int = VAR_PATHS,
        seed: int = VAR_SEED,
    ) -> PortfolioRisk:
        return await self.call(
            "portfolio_risk",
            horizon_days=horizon_days,
            confidence=confidence,
            paths=paths,
            seed=seed,
        )

    async def bots(self) -> BotsSnapshot:
        return await self.call("bots")

    async def approve_opportunity(self, opportunity_id: str) -> Outcome:
        return await self._command("approve_opportunity", opportunity_id=opportunity_id)

    async def reject_opportunity(self, opportunity_id: str) -> Outcome:
        return await self._command("reject_opportunity", opportunity_id=opportunity_id)

    async def edit_opportunity(self, opportunity_id: str) -> Outcome:
        return await self._command("edit_opportunity", opportunity_id=opportunity_id)

    async def start_bot(self, name: str) -> Outcome:
        return await self._command("start_bot", name=name)

    async def stop_bot(self, name: str) -> Outcome:
        return await self._command("stop_bot", name=name)

    async def pause_bot(self, name: str) -> Outcome:
        return await self._command("pause_bot", name=name)

    async def cycle_bot_mode(self, name: str) -> Outcome:
        return await self._command("cycle_bot_mode", name=name)
