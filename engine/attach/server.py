"""The engine side of attaching: a websocket server on an owner-only unix socket.

Every console that attaches is served by one shared ``LocalClient``, so orders
from any console take the same path (risk included) as the engine's own, and
snapshots are conflated per console: each asks with its own ``Cursor`` and gets
only what changed since, at its own pace, never every tick. A console that
vanishes mid-stream only ends its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from loguru import logger
from websockets.asyncio.server import Server, ServerConnection, unix_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from engine.attach import protocol
from engine.attach.codec import MAX_MESSAGE_BYTES, CodecError, encode
from engine.attach.peer import prepare_socket_dir, refuse_peer
from engine.client import LocalClient
from engine.core.errors import TickdeckError
from engine.health import HealthMonitor, Status

HELLO_TIMEOUT_S = 5.0
POLICY_VIOLATION = 1008  # websocket close code: the peer broke the rules


class AttachServer:
    """Serves ``client`` on the unix socket ``path`` (0600 in a 0700 directory)."""

    def __init__(
        self,
        client: LocalClient,
        path: Path,
        *,
        token: str | None = None,
        health: HealthMonitor | None = None,
        uid: int | None = None,
    ) -> None:
        """``token``, when set, must come in every console's hello; ``uid`` is the only user
        who may attach (default: the engine's own)."""
        self.client = client
        self.path = path
        self._token = token
        self._health = health
        self._uid = os.getuid() if uid is None else uid
        self._server: Server | None = None
        self._connections: set[ServerConnection] = set()
        self.rejected = 0  # messages refused for breaking the protocol
        self.refused = 0  # connections refused (another user, bad hello, wrong token)
        self._ops: dict[str, Callable[..., Awaitable[Any]]] = {
            "snapshot": client.snapshot,
            "symbols": client.symbols,
            "bars": client.bars,
            "history": client.history,
            "preview": client.preview,
            "execute": client.execute,
            "submit": client.submit,
            "cancel": client.cancel,
            "kill": client.kill,
            "reset_kill": client.reset_kill,
            "option_chain": client.option_chain,
            "option_smile": client.option_smile,
            "portfolio_risk": client.portfolio_risk,
            "bots": client.bots,
            "approve_opportunity": client.approve_opportunity,
            "reject_opportunity": client.reject_opportunity,
            "edit_opportunity": client.edit_opportunity,
            "start_bot": client.start_bot,
            "stop_bot": client.stop_bot,
            "pause_bot": client.pause_bot,
            "cycle_bot_mode": client.cycle_bot_mode,
        }

    def set_token(self, token: str | None) -> None:
        """Consoles that attach from now on must bring ``token`` (None: no token needed)."""
        self._token = token

    @property
    def consoles(self) -> int:
        """Consoles attached now."""
        return len(self._connections)

    async def start(self) -> None:
        prepare_socket_dir(self.path)
        # A socket file left by an engine that died is in the way; a live engine's pid file
        # (checked before this) keeps two engines from sharing one path.
        self.path.unlink(missing_ok=True)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await unix_serve(
                self._serve,
                str(self.path),
                process_request=self._check_peer,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,
            )
        finally:
            os.umask(old_umask)
        self.path.chmod(0o600)
        if self._health is not None:
            self._health.watch_queue("attach.write_buffer_bytes", self._write_buffered)
        self.beat()
        logger.info("consoles can attach at {}", self.path)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        self.path.unlink(missing_ok=True)
        if self._health is not None:
            self._health.forget_queue("attach.write_buffer_bytes")
            self._health.beat("attach", Status.DOWN, "stopped")

    def beat(self) -> None:
        """Report to the health monitor: how many consoles are attached."""
        if self._health is not None:
            self._health.beat("attach", Status.OK, f"{self.consoles} console(s) attached")

    def _write_buffered(self) -> int:
        total = 0
        for connection in self._connections:
            transport = connection.transport
            if transport is not None and not transport.is_closing():
                total += transport.get_write_buffer_size()
        return total

    def _check_peer(self, connection: ServerConnection, _request: Request) -> Response | None:
        reason = refuse_peer(connection.transport.get_extra_info("socket"), self._uid)
        if reason is None:
            return None
        self.refused += 1
        logger.warning("attach refused: {}", reason)
        return connection.respond(HTTPStatus.FORBIDDEN, reason + "\n")

    async def _serve(self, ws: ServerConnection) -> None:
        if not await self._greet(ws):
            return
        # Counted before the welcome goes out: once a console is in, health says so.
        self._connections.add(ws)
        self.beat()
        logger.info("console attached ({} now)", self.consoles)
        try:
            await ws.send(encode(protocol.welcome(self.client.engine.settings.mode.value)))
            async for frame in ws:
                await ws.send(await self._answer(frame))
        except ConnectionClosed:
            pass  # the console left (or its SSH session died); nothing else changes
        finally:
            self._connections.discard(ws)
            self.beat()
            logger.info("console detached ({} left)", self.consoles)

    async def _greet(self, ws: ServerConnection) -> bool:
        """Read and check the console's hello; a refusal is answered, and the socket closed."""
        try:
            hello = protocol.parse_hello(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
            if self._token is not None and not hmac.compare_digest(
                (hello.token or "").encode(), self._token.encode()
            ):
                raise CodecError("the token is missing or wrong")
            return True
        except CodecError as error:
            self.refused += 1
            logger.warning("attach refused: {}", error)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(protocol.error(None, str(error))))
                await ws.close(POLICY_VIOLATION, str(error)[:120])
        except TimeoutError:
            self.refused += 1
            await ws.close(POLICY_VIOLATION, "no hello")
        except ConnectionClosed:
            pass
        return False

    async def _answer(self, frame: bytes | str) -> bytes:
        """The encoded answer to one frame: a result, or an error with one sentence."""
        try:
            call = protocol.parse_call(frame)
        except CodecError as error:
            self.rejected += 1
            logger.warning("attach: message rejected: {}", error)
            return encode(protocol.error(getattr(error, "call_id", None), str(error)))
        try:
            # A value that cannot travel is an error answer too, never a dead connection.
            return encode(protocol.result(call.id, await self._ops[call.op](**call.args)))
        except TickdeckError as error:
            return encode(protocol.error(call.id, str(error)))
        except Exception:  # the engine must outlive any one console's request
            logger.exception("attach: {} failed", call.op)
            return encode(
                protocol.error(call.id, f"the engine could not answer {call.op}; see its log")
            )
