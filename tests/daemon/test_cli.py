"""The command line around the daemon: one sentence and exit status 2 for every mistake."""

from __future__ import annotations

import socket

from engine.cli import EXIT_INPUT, main


def _never(_settings, _make_client) -> int:
    raise AssertionError("the console must not open")


def test_attach_with_no_engine_running_is_one_sentence(sock_dir, capsys):
    code = main(["attach", "--socket", str(sock_dir / "engine.sock")], console=_never)
    assert code == EXIT_INPUT
    assert capsys.readouterr().err == (
        f"tickdeck: no engine is listening at {sock_dir / 'engine.sock'}; "
        "start one with `tickdeck engine --daemon`\n"
    )


def test_a_malformed_health_address_is_refused(capsys):
    code = main(["engine", "--daemon", "--health", "5555"])
    assert code == EXIT_INPUT
    assert "daemon.health: '5555' is not HOST:PORT" in capsys.readouterr().err


def test_a_health_port_in_use_stops_the_daemon_with_a_sentence(sock_dir, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                "engine",
                "--daemon",
                "--symbols",
                "AAPL",
                "--data-dir",
                str(sock_dir / "data"),
                "--socket",
                str(sock_dir / "run" / "engine.sock"),
                "--pid-file",
                str(sock_dir / "run" / "engine.pid"),
                "--health",
                f"127.0.0.1:{port}",
            ]
        )
    assert code == EXIT_INPUT
    assert f"the health API cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (sock_dir / "run" / "engine.pid").exists()
    assert not (sock_dir / "run" / "engine.sock").exists()
