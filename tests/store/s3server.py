"""A real S3-compatible server on loopback for the store's tests and benchmark: moto's server mode.

It runs as its own process (``python -m moto.server``), so the tests talk to it
over HTTP exactly as they would to MinIO, and its work does not share the
test process's interpreter.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

START_TIMEOUT_S = 30.0
ACCESS_KEY = "tickdeck-test"
SECRET_KEY = "tickdeck-test-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Server:
    """A running moto server: ``endpoint`` is ``127.0.0.1:<port>``."""

    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3_server() -> S3Server:
    """Start moto's S3 server on a free loopback port and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = S3Server(process, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the moto S3 server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{server.endpoint}/", timeout=1):
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the moto S3 server did not answer on {server.endpoint}")
