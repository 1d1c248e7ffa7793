"""Who may attach: the socket's place and permissions, and the peer's user id.

The socket lives in a directory only its owner can enter (0700) and is itself
0600; on Linux the engine also asks the kernel who is on the other end
(``SO_PEERCRED``) and refuses any user but its own.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import sys
from pathlib import Path

import platformdirs

from engine.core.errors import InputError

SOCKET_NAME = "engine.sock"
PID_NAME = "engine.pid"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


def runtime_dir() -> Path:
    """Where the socket and pid file live: the user's runtime dir when it exists (Linux
    ``$XDG_RUNTIME_DIR``), else the user's state dir."""
    runtime = Path(platformdirs.user_runtime_dir("tickdeck", appauthor=False))
    if runtime.parent.is_dir() and os.access(runtime.parent, os.W_OK):
        return runtime
    return Path(platformdirs.user_state_dir("tickdeck", appauthor=False))


def default_socket_path() -> Path:
    return runtime_dir() / SOCKET_NAME


def prepare_socket_dir(path: Path) -> None:
    """Create ``path``'s directory owner-only (0700), or refuse one others can enter."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise InputError(f"{directory} belongs to another user; choose another socket path")
    if stat.S_IMODE(info.st_mode) & 0o077:
        directory.chmod(0o700)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise InputError(f"the socket path {path} is too long for a unix socket; choose a shorter")


def peer_uid(sock: socket.socket) -> int | None:
    """The user id of the process at the other end of unix socket ``sock``; None where the
    platform cannot tell."""
    if sys.platform.startswith("linux"):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return uid
    getpeereid = getattr(socket.socket, "getpeereid", None)
    if getpeereid is not None:  # the BSDs and macOS, where Python offers it
        return getpeereid(sock)[0]
    return None


def refuse_peer(sock: socket.socket | None, allowed_uid: int) -> str | None:
    """Why the peer on ``sock`` may not attach (one sentence), or None when it may: it must be
    ``allowed_uid``. Where the kernel cannot name the peer, the 0700 directory is the guard."""
    if sock is None:
        return "the connection has no socket to check"
    if sock.family != socket.AF_UNIX:
        return "consoles attach over the unix socket only"
    uid = peer_uid(sock)
    if uid is not None and uid != allowed_uid:
        return f"user {uid} may not attach to an engine owned by user {allowed_uid}"
    return None
