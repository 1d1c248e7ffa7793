"""The NYSE trading calendar (``exchange_calendars``' XNYS): sessions, open and close, half days.

Loading the calendar takes about a second, so it is built once, on first use.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import date

CALENDAR_NAME = "XNYS"
CALENDAR_START = "1990-01-01"


@dataclass(slots=True, frozen=True)
class Session:
    """One trading session: its date and regular-hours open and close in ns since the epoch."""

    day: date
    open_ns: int
    close_ns: int
    half_day: bool

    @property
    def minutes(self) -> int:
        return (self.close_ns - self.open_ns) // 60_000_000_000


@functools.cache
def _calendar():
    import exchange_calendars

    # exchange_calendars reads pandas in ways pandas 3.1 deprecates; the warnings are its own.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return exchange_calendars.get_calendar(CALENDAR_NAME, start=CALENDAR_START)


def sessions(start: date, end: date) -> list[Session]:
    """Every NYSE session from ``start`` to ``end`` inclusive, with its hours (half days shorter)."""
    if end < start:
        return []
    calendar = _calendar()
    first = max(start, calendar.first_session.date())
    last = min(end, calendar.last_session.date())
    if last < first:
        return []
    schedule = calendar.schedule.loc[first.isoformat() : last.isoformat()]
    early = {stamp.date() for stamp in calendar.early_closes}
    return [
        Session(label.date(), int(row.open.value), int(row.close.value), label.date() in early)
        for label, row in zip(schedule.index, schedule.itertuples(index=False), strict=True)
    ]


def covered_range() -> tuple[date, date]:
    """The first and last dates the calendar knows sessions for."""
    calendar = _calendar()
    return calendar.first_session.date(), calendar.last_session.date()
