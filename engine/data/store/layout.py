"""Where objects live in the bucket.

``[prefix/]v1/bars/<timeframe>/<SYMBOL>/<period>.parquet``,
``[prefix/]v1/trades/<SYMBOL>/<period>.parquet`` and the same for quotes. The
period is the New York trading date ``YYYY-MM-DD`` for intraday data, and the
year ``YYYY`` for daily bars (a year of daily bars is one small object, not 252
tiny ones). Writers stage objects under ``[prefix/]tmp/`` and quarantined rows
go under ``[prefix/]quarantine/``; readers never look at either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.core.clock import NEW_YORK, ns_to_datetime
from engine.data.store.schema import SCHEMA_VERSION, Kind

SUFFIX = ".parquet"
VERSION_DIR = f"v{SCHEMA_VERSION}"
TMP_DIR = "tmp"
QUARANTINE_DIR = "quarantine"
YEARLY_TIMEFRAMES = frozenset({"1Day"})


@dataclass(slots=True, frozen=True, order=True)
class Series:
    """One stored series: a kind, a timeframe ("" for trades and quotes) and a symbol."""

    kind: Kind
    timeframe: str
    symbol: str

    @property
    def yearly(self) -> bool:
        return self.timeframe in YEARLY_TIMEFRAMES

    def period_of(self, ts_ns: int) -> str:
        """The partition a row stamped ``ts_ns`` belongs to."""
        day = ns_to_datetime(ts_ns, NEW_YORK).date()
        return f"{day.year:04d}" if self.yearly else day.isoformat()

    def periods(self, start: date, end: date) -> list[str]:
        """Every partition name from ``start`` to ``end`` inclusive (days, or years for daily bars)."""
        if self.yearly:
            return [f"{year:04d}" for year in range(start.year, end.year + 1)]
        return [
            date.fromordinal(ordinal).isoformat()
            for ordinal in range(start.toordinal(), end.toordinal() + 1)
        ]

    def describe(self) -> str:
        return f"{self.symbol} {self.timeframe or self.kind}"


def series_dir(prefix: str, series: Series) -> str:
    """The folder (ending in "/") holding every partition of ``series``."""
    parts = [VERSION_DIR, series.kind.value]
    if series.kind is Kind.BARS:
        parts.append(series.timeframe)
    parts.append(series.symbol)
    return _join(prefix, *parts) + "/"


def object_key(prefix: str, series: Series, period: str) -> str:
    return f"{series_dir(prefix, series)}{period}{SUFFIX}"


def root_dir(prefix: str) -> str:
    return _join(prefix, VERSION_DIR) + "/"


def tmp_key(prefix: str, token: str) -> str:
    return _join(prefix, TMP_DIR, token + SUFFIX)


def quarantine_key(prefix: str, name: str) -> str:
    return _join(prefix, QUARANTINE_DIR, name)


def parse_key(prefix: str, key: str) -> tuple[Series, str] | None:
    """(series, period) for a data object's key; None for anything else under the prefix."""
    base = root_dir(prefix)
    if not key.startswith(base) or not key.endswith(SUFFIX):
        return None
    parts = key[len(base) : -len(SUFFIX)].split("/")
    try:
        kind = Kind(parts[0])
    except ValueError:
        return None
    if kind is Kind.BARS and len(parts) == 4:
        return Series(kind, parts[1], parts[2]), parts[3]
    if kind is not Kind.BARS and len(parts) == 3:
        return Series(kind, "", parts[1]), parts[2]
    return None


def _join(prefix: str, *parts: str) -> str:
    head = prefix.strip("/")
    return "/".join([head, *parts] if head else parts)
