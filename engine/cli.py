"""The ``tickdeck`` command line.

Every input mistake (a bad flag value, a malformed config, an unreadable data
path) ends in one sentence on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger
from platformdirs import user_log_dir

from engine.backtest.cli import add_backtest_parser, run_backtest_command
from engine.config import Mode, Settings, load_settings, render_settings
from engine.core.clock import NEW_YORK, LiveClock, datetime_to_ns, ns_to_datetime
from engine.core.errors import InputError, TickdeckError
from engine.logs import configure_logging, register_secrets

if TYPE_CHECKING:
    from engine.client import EngineClient
    from engine.node import Engine

EXIT_INPUT = 2

ConsoleRunner = Callable[[Settings, Callable[[], "EngineClient"]], int]
"""Opens the console: given the settings and a factory for the engine client, returns the exit
status. The console lives in ``tui``, which the engine may not import, so its entry point hands
this in (``tui.__main__``); the factory is called once the console has checked its own options."""

SESSION_OPEN = time(9, 30)
LIVE_HELP = "trade real money with Alpaca (asks you to type LIVE first; paper is the default)"


def sim_start_ns(start: str | None, today: date) -> int:
    """09:30 New York time on ``start`` (an ISO date or datetime), or on ``today``, rolled past weekends."""
    if start:
        try:
            moment = datetime.fromisoformat(start)
        except ValueError:
            raise InputError(
                f"'{start}' is not an ISO date or date-time (e.g. 2024-03-15)"
            ) from None
        if len(start) > 10:
            return datetime_to_ns(moment if moment.tzinfo else moment.replace(tzinfo=NEW_YORK))
        day = moment.date()
    else:
        day = today
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime_to_ns(datetime.combine(day, SESSION_OPEN, tzinfo=NEW_YORK))


def _engine_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engine", help="run the engine headless (no console)")
    p.add_argument(
        "--mode", choices=[m.value for m in Mode], help="market and broker (default sim)"
    )
    p.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this much market time"
    )
    p.add_argument("--seed", type=int, help="sim market seed (same seed, same market)")
    p.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="market time per wall second; 0 = as fast as possible",
    )
    p.add_argument("--data", metavar="PATH", help="replay data: a Lean data folder or one zip file")
    p.add_argument(
        "--symbols", metavar="A,B,...", help="watchlist (default: the bundled large caps)"
    )
    p.add_argument("--start", metavar="DATE", help="sim session date (default: today)")
    p.add_argument(
        "--orders", metavar="FILE|-", help="order-language lines to submit, from a file or stdin"
    )
    p.add_argument("--report", metavar="PATH", help="write a JSON report here at exit")
    p.add_argument(
        "--demo",
        action="store_true",
        help="a guided tour: fills, a partial fill, a cancel, a rejection",
    )
    p.add_argument(
        "--reset-sim", action="store_true", help="start a fresh sim paper account (and journal)"
    )
    p.add_argument("--keep-open", action="store_true", help="leave open orders working at exit")
    p.add_argument("--data-dir", metavar="DIR", help="where the journal and sim account live")
    p.add_argument("--live", action="store_true", help=LIVE_HELP)
    _bot_option(p)
    _daemon_options(p)


def _bot_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--bot SPEC``, repeatable; given, it replaces the config's ``bots.run``."""
    parser.add_argument(
        "--bot",
        action="append",
        metavar="KIND[:MODE][:K=V,...]",
        help="run a bot (repeatable): momentum, mean_reversion, breakout, pairs, ml, options;"
        " mode off, advise (default) or auto; e.g. momentum:auto:symbols=AAPL,fast=5,slow=20",
    )


def _daemon_options(p: argparse.ArgumentParser) -> None:
    """``tickdeck engine --daemon``: run until stopped, serving consoles and the health API."""
    group = p.add_argument_group("daemon mode")
    group.add_argument(
        "--daemon",
        action="store_true",
        help="run until stopped: pid file, attach socket for consoles, health API, SIGHUP reload",
    )
    group.add_argument(
        "--health", metavar="HOST:PORT", help="health API address (default 127.0.0.1:5555)"
    )
    group.add_argument("--no-health", action="store_true", help="serve no health API")
    group.add_argument("--socket", metavar="PATH", help="attach socket (default: runtime dir)")
    group.add_argument("--pid-file", metavar="PATH", help="pid file (default: runtime dir)")


def _attach_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attach", help="open the console on a running engine (`tickdeck engine --daemon`)"
    )
    p.add_argument("--socket", metavar="PATH", help="the engine's attach socket")
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="the engine's attach token (better: TICKDECK_DAEMON__TOKEN, kept out of `ps`)",
    )
    p.add_argument("--theme", metavar="NAME", help="tickdeck-dark, tickdeck-light, ...")
    p.add_argument("--fps", type=int, metavar="N", help="most frames drawn per second")
    p.add_argument(
        "--mouse", action=argparse.BooleanOptionalAction, default=None, help="mouse support"
    )


def _console_options(parser: argparse.ArgumentParser) -> None:
    """Options for the console, which opens when no subcommand is given."""
    group = parser.add_argument_group("console (no subcommand)")
    group.add_argument(
        "--replay", metavar="PATH", help="rehearse recorded data (a Lean folder or zip file)"
    )
    group.add_argument("--speed", type=float, metavar="X", help="market time per wall second")
    group.add_argument("--seed", type=int, help="sim market seed (same seed, same market)")
    group.add_argument(
        "--symbols", metavar="A,B,...", help="watchlist (default: the bundled large caps)"
    )
    group.add_argument("--start", metavar="DATE", help="sim session date (default: today)")
    group.add_argument("--data-dir", metavar="DIR", help="where the journal and sim account live")
    group.add_argument(
        "--reset-sim", action="store_true", help="start a fresh sim paper account (and journal)"
    )
    group.add_argument(
        "--mode", choices=[m.value for m in Mode], help="sim (default), replay, paper or live"
    )
    group.add_argument("--live", action="store_true", help=LIVE_HELP)
    group.add_argument("--theme", metavar="NAME", help="tickdeck-dark, tickdeck-light, ...")
    _bot_option(group)
    group.add_argument(
        "--refresh-hz", type=int, metavar="HZ", help="engine snapshots per second (10-30)"
    )
    group.add_argument(
        "--fps", type=int, metavar="N", help="most frames drawn per second (TEXTUAL_FPS wins)"
    )
    group.add_argument(
        "--mouse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mouse support (--no-mouse over slow SSH links; the keyboard does everything)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickdeck",
        description="Keyboard-driven trading console for Alpaca. With no subcommand, "
        "opens the console on the simulated market (or on recorded data with --replay).",
    )
    parser.add_argument(
        "--config", metavar="PATH", help="config file (default: the platform config dir)"
    )
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    _console_options(parser)
    sub = parser.add_subparsers(dest="command")
    _engine_parser(sub)
    _attach_parser(sub)
    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("show", help="print the effective config, secrets masked")
    _dev_parser(sub)
    _data_parser(sub)
    add_backtest_parser(sub)
    return parser


def _dev_parser(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("dev", help="developer tools")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    server = dev_sub.add_parser(
        "alpaca-server", help="run a local Alpaca-protocol server on 127.0.0.1 until Ctrl-C"
    )
    server.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    server.add_argument("--seed", type=int, default=7, help="sim market seed (default 7)")
    server.add_argument(
        "--symbols", nargs="+", default=["AAPL", "MSFT", "SPY"], help="symbols it trades"
    )
    server.add_argument("--speed", type=float, default=1.0, help="sim market speed (1 = real time)")


def _cli_overrides(args: argparse.Namespace) -> dict[str, object]:
    values: dict[str, object] = {"log.level": args.log_level}
    if args.command == "engine":
        values.update(
            {
                "mode": args.mode,
                "duration": args.duration,
                "seed": args.seed,
                "speed": args.speed,
                "data": args.data,
                "symbols": args.symbols,
                "sim.start": args.start,
                "cancel_on_exit": False if args.keep_open else None,
            }
        )
        if args.data and not args.mode:
            values["mode"] = Mode.REPLAY.value
        values.update(
            {
                "daemon.health": "none" if args.no_health else args.health,
                "daemon.socket": args.socket,
                "daemon.pid_file": args.pid_file,
            }
        )
    elif args.command == "attach":
        values.update(
            {
                "daemon.socket": args.socket,
                "daemon.token": args.token,
                "console.theme": args.theme,
                "console.fps": args.fps,
                "console.mouse": args.mouse,
            }
        )
    elif args.command is None:
        values.update(
            {
                "seed": args.seed,
                "speed": args.speed,
                "data": args.replay,
                "symbols": args.symbols,
                "sim.start": args.start,
                "console.theme": args.theme,
                "console.refresh_hz": args.refresh_hz,
                "console.fps": args.fps,
                "console.mouse": args.mouse,
            }
        )
        if args.replay:
            values["mode"] = Mode.REPLAY.value
        elif args.mode:
            values["mode"] = args.mode
    if getattr(args, "live", False):
        values["mode"] = Mode.LIVE.value
    if getattr(args, "bot", None):
        values["bots.run"] = args.bot
    return values


def confirm_live(args: argparse.Namespace, settings: Settings, ask=input) -> bool:
    """Live trading needs the --live flag AND the word LIVE typed at a terminal; True when given."""
    if settings.mode is not Mode.LIVE:
        return False
    if not getattr(args, "live", False):
        raise InputError("mode 'live' trades real money: it needs the --live flag as well")
    if not sys.stdin.isatty():
        raise InputError("live trading needs its confirmation typed at a terminal; nothing started")
    answer = ask(f"Trade REAL money through {settings.alpaca.base_url}? Type LIVE to go on: ")
    if answer.strip() != "LIVE":
        raise InputError("live trading was not confirmed; nothing was started")
    return True


def main(argv: list[str] | None = None, *, console: ConsoleRunner | None = None) -> int:
    """Run ``tickdeck``; with no subcommand, open the console through ``console``."""
    parser = build_parser()
    logger.remove()  # nothing is logged until configure_logging() installs the real sinks
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    try:
        settings = load_settings(
            config_path=Path(args.config) if args.config else None, cli=_cli_overrides(args)
        )
        register_secrets(
            [settings.alpaca.key_id, settings.alpaca.secret_key, settings.daemon.token]
        )
        register_secrets([settings.s3.access_key, settings.s3.secret_key])
        if args.command == "config":
            print(render_settings(settings))
            return 0
        if args.command == "dev":
            return _run_dev(args, settings)
        if args.command == "data":
            return _run_data(args, settings)
        if args.command == "backtest":
            return run_backtest_command(args)
        if args.command == "attach":
            return _run_attach(settings, console)
        live = confirm_live(args, settings)
        if args.command is None:
            return _run_console(args, settings, console, live)
        if getattr(args, "daemon", False):
            return _run_daemon_engine(args, settings, live)
        return _run_engine(args, settings, live)
    except TickdeckError as error:
        print(f"tickdeck: {error}", file=sys.stderr)
        return EXIT_INPUT


def _configure_logs(settings: Settings, *, to_stderr: bool) -> None:
    log = settings.log
    log_dir = Path(log.dir) if log.dir else Path(user_log_dir("tickdeck", appauthor=False))
    configure_logging(
        level=log.level,
        log_dir=log_dir,
        json_file=log.json,
        rotation=log.rotation,
        retention=log.retention,
        console=to_stderr,
    )


def build_engine(
    args: argparse.Namespace, settings: Settings, *, live_confirmed: bool = False
) -> Engine:
    """The engine for ``settings``: the one place both the headless runner and the console build it."""
    from engine.node import Engine

    # The wall clock is read here, at the edge, only to pick the sim's session date.
    today = ns_to_datetime(LiveClock().now_ns(), NEW_YORK).date()
    start_ns = sim_start_ns(settings.sim.start, today)
    return Engine(
        settings,
        start_ns=start_ns,
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        reset_sim=getattr(args, "reset_sim", False),
        live_confirmed=live_confirmed,
    )


def _run_console(
    args: argparse.Namespace, settings: Settings, console: ConsoleRunner | None, live: bool
) -> int:
    if console is None:
        raise InputError(
            "this entry point has no console; run `tickdeck` for it, or `tickdeck engine` headless"
        )
    # The terminal belongs to the console: log lines go to the file only.
    _configure_logs(settings, to_stderr=False)

    def make_client() -> EngineClient:
        from engine.client import LocalClient

        return LocalClient(build_engine(args, settings, live_confirmed=live))

    return console(settings, make_client)


def _run_engine(args: argparse.Namespace, settings: Settings, live: bool) -> int:
    from engine.headless import HeadlessRunner, demo_lines
    from engine.orders.script import OrderScript

    _configure_logs(settings, to_stderr=True)
    engine = build_engine(args, settings, live_confirmed=live)
    script: OrderScript | None = None
    stdin_script = False
    if getattr(args, "demo", False):
        script = OrderScript(
            engine.oms, engine.market, demo_lines(engine), execution=engine.execution
        )
    elif getattr(args, "orders", None) == "-":
        script = OrderScript(engine.oms, engine.market, execution=engine.execution)
        stdin_script = True
    elif getattr(args, "orders", None):
        path = Path(args.orders)
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise InputError(f"cannot read the orders file {path}: {error.strerror}") from None
        script = OrderScript(engine.oms, engine.market, lines, execution=engine.execution)
    runner = HeadlessRunner(
        engine,
        script=script,
        stdin_script=stdin_script,
        report_path=Path(args.report) if getattr(args, "report", None) else None,
        status_interval=settings.status_interval,
        daemon=_daemon(args, engine) if getattr(args, "daemon", False) else None,
    )
    try:
        return asyncio.run(runner.run())
    except KeyboardInterrupt:
        logger.info("interrupted")
        return 130


def _daemon(args: argparse.Namespace, engine: Engine):
    """The daemon services for ``engine``; SIGHUP re-reads the config with the same flags."""
    from engine.daemon import Daemon

    def reload() -> Settings:
        return load_settings(
            config_path=Path(args.config) if args.config else None, cli=_cli_overrides(args)
        )

    return Daemon(
        engine,
        reload_settings=reload,
        reopen_logs=lambda settings: _configure_logs(settings, to_stderr=True),
    )


def _run_daemon_engine(args: argparse.Namespace, settings: Settings, live: bool) -> int:
    """``engine --daemon``: hold the pid file for the whole run, so one engine serves a box."""
    from engine.daemon import PidFile, default_pid_path

    configured = settings.daemon.pid_file
    pid_file = PidFile(Path(configured) if configured else default_pid_path())
    pid_file.acquire()
    try:
        return _run_engine(args, settings, live)
    finally:
        pid_file.release()


def _run_attach(settings: Settings, console: ConsoleRunner | None) -> int:
    """``tickdeck attach``: the console on a running engine; quitting it only detaches."""
    from engine.attach.peer import default_socket_path
    from engine.attach.remote import RemoteClient

    if console is None:
        raise InputError("this entry point has no console; run `tickdeck attach`")
    _configure_logs(settings, to_stderr=False)
    daemon = settings.daemon
    path = Path(daemon.socket) if daemon.socket else default_socket_path()

    async def probe() -> None:
        client = RemoteClient(path, token=daemon.token)
        await client.start()
        await client.stop()

    # Fail here, with one sentence, rather than inside the console's event loop.
    asyncio.run(probe())
    return console(settings, lambda: RemoteClient(path, token=daemon.token))


def _run_dev(args: argparse.Namespace, settings: Settings) -> int:
    from engine.alpaca.server.dev import run_dev_server

    _configure_logs(settings, to_stderr=True)
    return run_dev_server(port=args.port, seed=args.seed, symbols=args.symbols, speed=args.speed)


def _data_parser(sub: argparse._SubParsersAction) -> None:
    from engine.data.datacli import add_data_parser

    add_data_parser(sub)


def _run_data(args: argparse.Namespace, settings: Settings) -> int:
    """``tickdeck data ...``: the history store's command line (engine.data.datacli)."""
    from engine.data.datacli import run_data

    _configure_logs(settings, to_stderr=True)
    # The wall clock is read here, at the edge, only to bound service fetches ("up to today").
    today = ns_to_datetime(LiveClock().now_ns(), NEW_YORK).date()
    return run_data(args, settings, today=today)


if __name__ == "__main__":
    sys.exit(main())
