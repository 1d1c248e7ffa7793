"""``tickdeck data``: ingest history into the store, list what it holds, verify it.

``ingest PATH...`` reads Lean zips, Pooksoft CSVs and Parquet files (folders are
searched); ``ingest --from alpaca|yfinance --symbols ...`` fetches bars from a
service. ``ls`` prints coverage per symbol and timeframe. ``verify`` checks the
stored series (or, given paths, files before they are ingested) and exits 1 when
it finds a problem. Every mistake in the input is one sentence and exit status
2, from ``engine.cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.core.errors import InputError

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.data.ingest import IngestReport, VerifyReport
    from engine.data.store import HistoryStore

EXIT_PROBLEMS = 1
SHOWN_PROBLEMS = 50  # problems printed in full; the rest are counted
_BAR_WIDTH = 30


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    """The ``data`` subcommand group."""
    data = sub.add_parser("data", help="the history store: ingest, ls, verify")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    ingest = data_sub.add_parser(
        "ingest", help="store history from files (Lean, Pooksoft CSV, Parquet) or a service"
    )
    ingest.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to ingest")
    ingest.add_argument(
        "--from",
        dest="service",
        choices=("alpaca", "yfinance"),
        help="fetch bars from a service instead of files",
    )
    ingest.add_argument("--symbols", metavar="A,B,...", help="symbols to fetch (with --from)")
    ingest.add_argument("--symbol", metavar="SYM", help="the symbol of files that do not name it")
    ingest.add_argument("--timeframe", metavar="TF", help="1Min, 5Min, 1Hour or 1Day")
    ingest.add_argument("--start", metavar="DATE", help="first day to fetch (default: 30 days ago)")
    ingest.add_argument("--end", metavar="DATE", help="last day to fetch (default: today)")
    ls = data_sub.add_parser("ls", help="list stored coverage per symbol and timeframe")
    ls.add_argument("--symbol", metavar="SYM", help="only this symbol")
    verify = data_sub.add_parser(
        "verify", help="check schema, duplicates, calendar gaps and OHLC sanity"
    )
    verify.add_argument("paths", nargs="*", metavar="PATH", help="check files instead of the store")
    verify.add_argument("--symbol", metavar="SYM", help="only this symbol")
    verify.add_argument("--timeframe", metavar="TF", help="only this timeframe")


def run_data(args: argparse.Namespace, settings: Settings, *, today: date) -> int:
    """Run one ``data`` subcommand; ``today`` (New York) bounds service fetches."""
    timeframe = _timeframe(getattr(args, "timeframe", None))
    if args.data_command == "verify" and args.paths:
        return _print_verify(_verify_files(args.paths, timeframe))
    store = _open_store(settings)
    try:
        if args.data_command == "ls":
            return _ls(store, args.symbol)
        if args.data_command == "verify":
            from engine.data.ingest import verify_store

            return _print_verify(verify_store(store, symbol=args.symbol, timeframe=timeframe))
        return _ingest(args, settings, store, timeframe, today)
    finally:
        store.close()


def _timeframe(value: str | None) -> str | None:
    if value is None:
        return None
    from engine.data.store.schema import parse_timeframe

    try:
        return parse_timeframe(value)
    except ValueError as error:
        raise InputError(f"--timeframe: {error}") from None


def _open_store(settings: Settings) -> HistoryStore:
    from engine.data.store import HistoryStore

    if not settings.s3.configured:
        raise InputError(
            "no history store is configured: set s3.endpoint in the config or TICKDECK_S3_ENDPOINT"
        )
    store = HistoryStore(settings.s3)
    store.ensure_bucket()
    return store


def _verify_files(paths: list[str], timeframe: str | None) -> VerifyReport:
    from engine.data.ingest import verify_files

    return verify_files([Path(p) for p in paths], timeframe=timeframe)


def _ls(store: HistoryStore, symbol: str | None) -> int:
    rows = [
        c for c in store.coverage() if symbol is None or c.series.symbol == symbol.strip().upper()
    ]
    if not rows:
        print("the store holds no history" + (f" for {symbol.upper()}" if symbol else ""))
        return 0
    print(f"{'symbol':<8} {'kind':<7} {'timeframe':<9} {'first':<10} {'last':<10} parts      KiB")
    for c in rows:
        s = c.series
        print(
            f"{s.symbol:<8} {s.kind.value:<7} {s.timeframe or '-':<9} {c.first:<10} {c.last:<10}"
            f" {c.partitions:>5} {c.bytes / 1024:>8.1f}"
        )
    return 0


def _print_verify(report: VerifyReport) -> int:
    problems = report.problems
    for line in problems[:SHOWN_PROBLEMS]:
        print(line)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"... and {len(problems) - SHOWN_PROBLEMS} more")
    print(
        f"verified {report.series} series, {report.rows} rows: "
        f"{len(report.bad_rows)} bad rows, {len(report.schema)} schema problems, "
        f"{len(report.duplicates)} duplicates, {len(report.ohlc)} OHLC problems, "
        f"{len(report.gaps)} gaps"
    )
    return EXIT_PROBLEMS if problems else 0


def progress_bar(stream: TextIO | None = None) -> Callable[[int, int, str], None]:
    """A progress bar on ``stream`` (stderr): redrawn in place on a terminal, one line a step
    elsewhere."""
    stream = stream or sys.stderr
    tty = stream.isatty()

    def show(done: int, total: int, label: str) -> None:
        filled = _BAR_WIDTH * done // max(total, 1)
        bar = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done}/{total} {label}"
        if tty:
            stream.write(f"\r\033[K{bar}")
            if done == total:
                stream.write("\n")
        else:
            stream.write(bar + "\n")
        stream.flush()

    return show


def _ingest(
    args: argparse.Namespace,
    settings: Settings,
    store: HistoryStore,
    timeframe: str | None,
    today: date,
) -> int:
    from engine.data.ingest import ingest_files

    bar = progress_bar()
    if args.service:
        if args.paths:
            raise InputError("give files to ingest, or --from a service, not both")
        report = _ingest_service(args, settings, store, timeframe or "1Day", today, bar)
    else:
        if not args.paths:
            raise InputError("data ingest needs files or folders, or --from alpaca|yfinance")
        report = ingest_files(
            store,
            [Path(p) for p in args.paths],
            symbol=args.symbol,
            timeframe=timeframe,
            progress=lambda done, total, path: bar(done, total, path.name),
        )
    _print_ingest(report)
    return 0


def _day(value: str | None, flag: str, default: date) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{flag} '{value}' is not a date (e.g. 2024-03-15)") from None


def _ingest_service(
    args: argparse.Namespace,
    settings: Settings,
    store: HistoryStore,
    timeframe: str,
    today: date,
    bar: Callable[[int, int, str], None],
) -> IngestReport:
    from engine.data.backfill import AlpacaSource, SourceUnavailable, YFinanceSource
    from engine.data.ingest import IngestReport, ingest_bars

    symbols = [s.strip().upper() for s in (args.symbols or "").replace(" ", ",").split(",")]
    symbols = [s for s in symbols if s]
    if not symbols:
        raise InputError(f"--from {args.service} needs --symbols A,B,...")
    end = _day(args.end, "--end", today)
    start = _day(args.start, "--start", end - timedelta(days=30))
    if start > end:
        raise InputError(f"--start {start} is after --end {end}")
    if args.service == "alpaca":
        alpaca = settings.alpaca
        if not (alpaca.key_id and alpaca.secret_key):
            raise InputError("--from alpaca needs APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        source = AlpacaSource(alpaca.data_url, alpaca.key_id, alpaca.secret_key, alpaca.feed)
    else:
        source = YFinanceSource()
    report = IngestReport()
    for done, symbol in enumerate(symbols, 1):
        try:
            bars = source.fetch(symbol, timeframe, start, end)
        except SourceUnavailable as error:
            raise InputError(f"{source.name}: {error}") from None
        fetched = ingest_bars(store, bars, source.name)
        report.rows += fetched.rows
        report.written += fetched.written
        report.series |= fetched.series
        bar(done, len(symbols), f"{symbol}: {len(bars)} bars")
    return report


def _print_ingest(report: IngestReport) -> None:
    for line in report.bad_rows[:SHOWN_PROBLEMS]:
        print(f"bad row: {line}")
    if len(report.bad_rows) > SHOWN_PROBLEMS:
        print(f"... and {len(report.bad_rows) - SHOWN_PROBLEMS} more bad rows")
    written = report.written
    print(
        f"ingested {report.rows} rows from {report.files} files into {len(report.series)} series: "
        f"{written.written} partitions written, {written.unchanged} unchanged; "
        f"{report.bad_count} bad rows quarantined"
        + (f" in {', '.join(report.quarantined)}" if report.quarantined else "")
    )
    if report.skipped_files:
        print(f"skipped {report.skipped_files} files that are not a format tickdeck ingests")
