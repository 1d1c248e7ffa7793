"""Per-symbol calibration of the sim market from real daily history.

The bundled files are the MIT-licensed Pooksoft S&P 500 data set (prices from
AlphaVantage), trimmed to about two years; see ``NOTICE``. Each file has the
columns ``timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,
split_coefficient``, one row per trading day.

From a file we take the last raw close (where the sim starts), the daily
volatility of split- and dividend-adjusted closes, the average daily volume
(split-adjusted) and, from price level and liquidity, an estimate of the typical
quoted spread and displayed quote size. A corrupt row never stops calibration:
it becomes a ``DataError`` naming ``file:line`` and is skipped.
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from importlib.resources.abc import Traversable

from loguru import logger

from engine.core.errors import DataError, InputError
from engine.core.prices import tick_size

DEFAULT_WATCHLIST: tuple[str, ...] = (
    "AAPL",
    "MSFT",
    "AMZN",
    "GOOGL",
    "FB",
    "NVDA",
    "TSLA",
    "JPM",
    "JNJ",
    "WMT",
    "PG",
    "XOM",
    "UNH",
    "HD",
    "BAC",
    "KO",
    "PEP",
    "DIS",
    "CSCO",
    "INTC",
)
"""The bundled large caps, in watchlist order (the data set predates Meta's rename: FB)."""

VOL_WINDOW = 250  # daily returns behind daily_vol: about one trading year
VOLUME_WINDOW = 60  # days behind avg_daily_volume: about one quarter
MIN_ROWS = 3  # two returns are the fewest a sample standard deviation needs

# Typical spread of a US large cap, in bps, before the one-tick floor:
# SPREAD_BPS_AT_1B at $1bn traded a day, narrowing as the fourth root of dollar volume.
# That is about 1 bp (25-30 cents) for AMZN and GOOGL, 2-3 cents for MSFT or JNJ, and the
# one-tick floor (a cent) binds for liquid low-priced names such as AAPL, BAC or KO.
SPREAD_BPS_AT_1B = 1.5
SPREAD_BPS_MAX = 50.0
# Displayed size in round lots: about QUOTE_LOTS_AT_1 / sqrt(price), from 1 lot for
# four-figure names up to 9 lots for names in the $30s and below.
QUOTE_LOTS_AT_1 = 60.0
ROUND_LOT = 100
MAX_QUOTE_LOTS = 9

_REQUIRED_COLUMNS = ("timestamp", "close", "adjusted_close", "volume", "split_coefficient")


@dataclass(slots=True, frozen=True)
class SymbolProfile:
    """What the sim market needs to know about one symbol.

    ``start_price`` is the last raw close in the history (where the sim opens) and
    ``prev_close`` the raw close of the day before it. ``daily_vol`` is the
    standard deviation of daily log returns (not annualised); ``spread_bps`` is
    the typical quoted spread as a fraction of price, never less than one tick at
    ``start_price``; ``typical_quote_size`` is a round-lot displayed size.
    """

    symbol: str
    start_price: Decimal
    prev_close: Decimal
    daily_vol: float
    avg_daily_volume: int
    spread_bps: float
    typical_quote_size: int


@dataclass(slots=True, frozen=True)
class DailyRow:
    """One parsed day of history; ``volume`` is raw (not split-adjusted), as the file has it."""

    day: date
    close: Decimal
    adjusted_close: float
    volume: int
    split_coefficient: Decimal


@dataclass(slots=True, frozen=True)
class DailyHistory:
    """A symbol's valid rows, oldest first, and the rows that were skipped as corrupt."""

    symbol: str
    source: str
    rows: tuple[DailyRow, ...]
    errors: tuple[DataError, ...]

    @property
    def skipped(self) -> int:
        return len(self.errors)


def parse_daily_csv(symbol: str, text: str, source: str) -> DailyHistory:
    """Parse a daily-adjusted CSV; corrupt rows become ``DataError`` entries, never exceptions.

    Rows may come in either date order (the upstream files say newest first, the
    copies are oldest first); the result is sorted oldest first. A repeated date
    keeps its first row. Only a header without the needed columns raises
    ``DataError``, since then no row can be read.
    """
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise DataError(f"{source}:1", "the file is empty")
    columns = {name.strip(): index for index, name in enumerate(header)}
    missing = [name for name in _REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise DataError(f"{source}:1", f"the header lacks the columns {', '.join(missing)}")
    width = len(header)
    rows: dict[date, DailyRow] = {}
    errors: list[DataError] = []
    for line_no, fields in enumerate(reader, start=2):
        if not fields or all(not field.strip() for field in fields):
            continue
        where = f"{source}:{line_no}"
        try:
            row = _parse_row(fields, columns, width, where)
            if row.day in rows:
                raise DataError(
                    where, f"{row.day.isoformat()} appears twice; the first row is kept"
                )
        except DataError as error:
            errors.append(error)
            continue
        rows[row.day] = row
    return DailyHistory(
        symbol=symbol,
        source=source,
        rows=tuple(rows[day] for day in sorted(rows)),
        errors=tuple(errors),
    )


def _parse_row(fields: list[str], columns: dict[str, int], width: int, where: str) -> DailyRow:
    if len(fields) != width:
        raise DataError(where, f"expected {width} fields, found {len(fields)}")
    raw = {name: fields[columns[name]].strip() for name in _REQUIRED_COLUMNS}
    try:
        day = date.fromisoformat(raw["timestamp"])
    except ValueError:
        raise DataError(where, f"'{raw['timestamp']}' is not a date") from None
    close = _positive_decimal(raw["close"], "close", where)
    adjusted_close = float(_positive_decimal(raw["adjusted_close"], "adjusted_close", where))
    split_coefficient = _positive_decimal(raw["split_coefficient"], "split_coefficient", where)
    try:
        volume_value = Decimal(raw["volume"])
    except InvalidOperation:
        volume_value = Decimal("NaN")
    if (
        not volume_value.is_finite()
        or volume_value < 0
        or volume_value != volume_value.to_integral()
    ):
        raise DataError(where, f"volume '{raw['volume']}' is not a whole number of shares")
    return DailyRow(
        day=day,
        close=close,
        adjusted_close=adjusted_close,
        volume=int(volume_value),
        split_coefficient=split_coefficient,
    )


def _positive_decimal(text: str, column: str, where: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DataError(where, f"{column} '{text}' is not a number") from None
    if not value.is_finite() or value <= 0:
        raise DataError(where, f"{column} '{text}' is not a positive price")
    return value


def calibrate(history: DailyHistory) -> SymbolProfile:
    """Derive a ``SymbolProfile`` from the most recent rows of ``history``.

    ``daily_vol`` uses the last ``VOL_WINDOW`` log returns of adjusted closes
    (sample standard deviation); ``avg_daily_volume`` is the rounded mean of the
    last ``VOLUME_WINDOW`` volumes, each scaled by the splits that came after it
    so that old volumes count in today's shares. Shorter histories use what
    they have; fewer than ``MIN_ROWS`` valid rows raise ``DataError``.
    """
    rows = history.rows
    if len(rows) < MIN_ROWS:
        raise DataError(
            f"{history.source}:1",
            f"{history.symbol} has {len(rows)} valid rows; calibration needs at least {MIN_ROWS}",
        )
    recent = rows[-(VOL_WINDOW + 1) :]
    returns = [
        math.log(later.adjusted_close / earlier.adjusted_close)
        for earlier, later in itertools.pairwise(recent)
    ]
    volumes = _split_adjusted_volumes(rows[-VOLUME_WINDOW:])
    avg_daily_volume = round(sum(volumes) / len(volumes))
    start_price = rows[-1].close
    return SymbolProfile(
        symbol=history.symbol,
        start_price=start_price,
        prev_close=rows[-2].close,
        daily_vol=statistics.stdev(returns),
        avg_daily_volume=avg_daily_volume,
        spread_bps=estimate_spread_bps(start_price, avg_daily_volume),
        typical_quote_size=estimate_quote_size(start_price),
    )


def _split_adjusted_volumes(rows: Sequence[DailyRow]) -> list[Decimal]:
    # A split on day D multiplies the share count of every earlier day; walk back from the newest.
    factor = Decimal(1)
    adjusted: list[Decimal] = []
    for row in reversed(rows):
        adjusted.append(row.volume * factor)
        factor *= row.split_coefficient
    adjusted.reverse()
    return adjusted


def estimate_spread_bps(price: Decimal, avg_daily_volume: int) -> float:
    """Typical quoted spread in basis points of ``price``, never below one tick.

    ``SPREAD_BPS_AT_1B * (1e9 / dollar_volume) ** 0.25``, capped at
    ``SPREAD_BPS_MAX`` and floored at one tick of ``price``.
    """
    one_tick_bps = float(tick_size(price) / price) * 10_000
    dollar_volume = float(price) * avg_daily_volume
    if dollar_volume <= 0:
        return max(SPREAD_BPS_MAX, one_tick_bps)
    liquidity_bps = min(SPREAD_BPS_AT_1B * (1e9 / dollar_volume) ** 0.25, SPREAD_BPS_MAX)
    return max(liquidity_bps, one_tick_bps)


def estimate_quote_size(price: Decimal) -> int:
    """A typical displayed size: whole round lots, 100 to 900 shares, fewer the dearer the stock."""
    lots = round(QUOTE_LOTS_AT_1 / math.sqrt(float(price)))
    return ROUND_LOT * min(max(lots, 1), MAX_QUOTE_LOTS)


def _bundle_dir() -> Traversable:
    return resources.files("engine.data") / "bundled" / "pooksoft"


def _bundled_files() -> dict[str, Traversable]:
    files: dict[str, Traversable] = {}
    for entry in _bundle_dir().iterdir():
        name = entry.name
        # Files are named DA-<SYMBOL>-T-<download date>.csv.
        if name.startswith("DA-") and name.endswith(".csv") and "-T-" in name:
            files[name[3 : name.rindex("-T-")]] = entry
    return files


def bundled_symbols() -> tuple[str, ...]:
    """Every symbol with bundled history, sorted."""
    return tuple(sorted(_bundled_files()))


def load_profiles(symbols: Sequence[str] | None = None) -> dict[str, SymbolProfile]:
    """Calibrate ``symbols`` (default: ``DEFAULT_WATCHLIST``) from the bundled history.

    The result keeps the order asked for. Corrupt rows are skipped and logged
    with their ``file:line``; a symbol with no bundled file raises ``InputError``.
    """
    wanted = DEFAULT_WATCHLIST if symbols is None else tuple(s.strip().upper() for s in symbols)
    files = _bundled_files()
    unknown = [symbol for symbol in wanted if symbol not in files]
    if unknown:
        raise InputError(
            f"no bundled history for {', '.join(unknown)}; "
            f"the sim market knows {', '.join(sorted(files))}"
        )
    profiles: dict[str, SymbolProfile] = {}
    for symbol in wanted:
        entry = files[symbol]
        history = parse_daily_csv(symbol, entry.read_text(encoding="utf-8"), entry.name)
        if history.errors:
            logger.warning(
                "{}: skipped {} corrupt rows; first: {}", symbol, history.skipped, history.errors[0]
            )
        profiles[symbol] = calibrate(history)
    return profiles
