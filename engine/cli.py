"""The ``tickdeck`` command line.

Every input mistake (a bad flag value, a malformed config, an unreadable data
path) ends in one sentence on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

from loguru import logger
from platformdirs import user_log_dir

from engine.config import Mode, Settings, load_settings, render_settings
from engine.core.clock import NEW_YORK, datetime_to_ns
from engine.core.errors import InputError, TickdeckError
from engine.logs import configure_logging, register_secrets

EXIT_INPUT = 2

SESSION_OPEN = time(9, 30)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickdeck", description="Keyboard-driven trading console for Alpaca."
    )
    parser.add_argument(
        "--config", metavar="PATH", help="config file (default: the platform config dir)"
    )
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command")
    _engine_parser(sub)
    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("show", help="print the effective config, secrets masked")
    return parser


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
    return values


def main(argv: list[str] | None = None) -> int:
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
        register_secrets([settings.alpaca.key_id, settings.alpaca.secret_key])
        if args.command == "config":
            print(render_settings(settings))
            return 0
        return _run_engine(args, settings)
    except TickdeckError as error:
        print(f"tickdeck: {error}", file=sys.stderr)
        return EXIT_INPUT


def _run_engine(args: argparse.Namespace, settings: Settings) -> int:
    from engine.headless import HeadlessRunner, demo_lines
    from engine.node import Engine
    from engine.orders.script import OrderScript

    log = settings.log
    log_dir = Path(log.dir) if log.dir else Path(user_log_dir("tickdeck", appauthor=False))
    configure_logging(
        level=log.level,
        log_dir=log_dir,
        json_file=log.json,
        rotation=log.rotation,
        retention=log.retention,
    )
    # The wall clock is read here, at the edge, only to pick the sim's session date.
    start_ns = sim_start_ns(settings.sim.start, datetime.now(NEW_YORK).date())
    engine = Engine(
        settings,
        start_ns=start_ns,
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        reset_sim=getattr(args, "reset_sim", False),
    )
    script: OrderScript | None = None
    stdin_script = False
    if getattr(args, "demo", False):
        script = OrderScript(engine.oms, engine.market, demo_lines(engine))
    elif getattr(args, "orders", None) == "-":
        script, stdin_script = OrderScript(engine.oms, engine.market), True
    elif getattr(args, "orders", None):
        path = Path(args.orders)
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise InputError(f"cannot read the orders file {path}: {error.strerror}") from None
        script = OrderScript(engine.oms, engine.market, lines)
    runner = HeadlessRunner(
        engine,
        script=script,
        stdin_script=stdin_script,
        report_path=Path(args.report) if getattr(args, "report", None) else None,
        status_interval=settings.status_interval,
    )
    try:
        return asyncio.run(runner.run())
    except KeyboardInterrupt:
        logger.info("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
