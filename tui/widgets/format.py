"""Formatting shared by every pane: exact Decimal numbers, fixed widths, New York times.

Every ``fmt_*`` function returns a string; given ``width`` it is right-aligned in
exactly that many cells. A value that does not fit is shown as ``#`` fill, never
cut: a truncated number would be a wrong number. Money and prices never pass
through ``float``; floats appear only for wall-clock measurements (lag, rates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from textual.content import Content

from engine.core.prices import CENT, ZERO, cents, tick_size

NA = "--"  # no value yet (no quote, no fill)
MUTED = "$foreground 60%"  # Content style for labels and history ($text-muted is an auto colour)
UP = "$success"
DOWN = "$error"
NEW_YORK = ZoneInfo("America/New_York")

_NS_PER_SECOND = 1_000_000_000
_ONE_DECIMAL = Decimal("0.1")
_COMPACT_FROM = 10_000
_UNITS = (("K", 1_000), ("M", 1_000_000), ("B", 1_000_000_000), ("T", 1_000_000_000_000))


def fit(text: str, width: int = 0) -> str:
    """``text`` right-aligned in ``width`` cells (unchanged when ``width`` is 0); ``#`` fill if too long."""
    if not width:
        return text
    if len(text) > width:
        return "#" * width
    return text.rjust(width)


def _plain(value: Decimal) -> str:
    """Fixed-point text without a negative zero (``-0.00`` reads as a loss)."""
    return f"{value.copy_abs() if value == ZERO else value:f}"


def fmt_price(price: Decimal | None, width: int = 0, *, grid_of: Decimal | None = None) -> str:
    """A price with its tick's decimals: ``187.5`` -> ``187.50``, ``0.51234`` -> ``0.5123``.

    ``grid_of`` takes the decimals from another price, so a spread of ``0.01`` on a
    $187 stock reads ``0.01`` rather than the sub-dollar ``0.0100``.
    """
    if price is None:
        return fit(NA, width)
    grid = tick_size(abs(grid_of if grid_of is not None else price))
    return fit(_plain(price.quantize(grid, rounding=ROUND_HALF_EVEN)), width)


def fmt_money(amount: Decimal | None, width: int = 0, *, signed: bool = False) -> str:
    """Dollars to the cent with thousands separators: ``-1234.5`` -> ``-1,234.50``."""
    if amount is None:
        return fit(NA, width)
    value = cents(amount)
    if value == ZERO:
        value = value.copy_abs()
    return fit(f"{value:+,f}" if signed and value else f"{value:,f}", width)


def fmt_qty(qty: Decimal | None, width: int = 0) -> str:
    """A share quantity, as exact as it is: ``100`` -> ``100``, ``1500`` -> ``1,500``, ``0.5`` -> ``0.5``."""
    if qty is None:
        return fit(NA, width)
    value = qty.normalize()
    if value == ZERO:
        return fit("0", width)
    # normalize() turns 100 into 1E+2; quantizing to units brings integers back to plain digits.
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    return fit(f"{value:,f}", width)


def fmt_pct(value: Decimal | None, width: int = 0) -> str:
    """A signed percentage to two places: ``1.234`` -> ``+1.23%``; zero has no sign."""
    if value is None:
        return fit(NA, width)
    rounded = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    if rounded == ZERO:
        return fit("0.00%", width)
    return fit(f"{rounded:+f}%", width)


def fmt_compact(value: Decimal | int | None, width: int = 0) -> str:
    """Exact below 10,000 (``1,234``, ``12.50``), then one decimal and a unit (``12.3K``, ``1.2M``)."""
    if value is None:
        return fit(NA, width)
    number = Decimal(value)
    magnitude = abs(number)
    if magnitude < _COMPACT_FROM:
        if number == number.to_integral_value():
            return fit(f"{int(number):,}", width)
        return fit(fmt_money(number), width)
    text = ""
    for suffix, unit in _UNITS:
        scaled = (number / unit).quantize(_ONE_DECIMAL, rounding=ROUND_HALF_EVEN)
        text = f"{scaled:f}{suffix}"
        # 999,960 rounds to 1000.0K: say 1.0M instead.
        if abs(scaled) < 1_000:
            break
    return fit(text, width)


def fmt_volume(volume: int, width: int = 0) -> str:
    """Share volume for the quote board: ``950``, ``9,999``, ``12.3K``, ``1.2M``."""
    return fmt_compact(volume, width)


def fmt_time(ts_ns: int | None, width: int = 0, *, seconds: bool = True) -> str:
    """New York wall time of ``ts_ns``: ``09:31:05`` (or ``09:31`` without seconds)."""
    if ts_ns is None:
        return fit(NA, width)
    moment = datetime.fromtimestamp(ts_ns // _NS_PER_SECOND, tz=NEW_YORK)
    return fit(moment.strftime("%H:%M:%S" if seconds else "%H:%M"), width)


def fmt_ms(milliseconds: float | None, width: int = 0) -> str:
    """A measured duration: ``3.2 ms`` (``n/a`` where nothing is measured)."""
    if milliseconds is None:
        return fit("n/a", width)
    return fit(f"{milliseconds:,.1f} ms", width)


def fmt_rate(per_second: float, width: int = 0) -> str:
    """A measured rate: ``1,234/s``."""
    return fit(f"{per_second:,.0f}/s", width)


def fmt_order_id(order_id: str) -> str:
    """The short form a trader types: ``td-240315093000-12`` -> ``#12``."""
    head, _, seq = order_id.rpartition("-")
    return f"#{seq}" if head and seq.isdigit() else order_id


@dataclass(slots=True, frozen=True)
class Column:
    """One fixed-width column of a pane's table.

    ``drop`` orders what goes when the pane is too narrow: the highest number is
    dropped first; 0 is never dropped.
    """

    key: str
    title: str
    width: int
    drop: int = 0
    left: bool = False

    def place(self, text: str) -> str:
        """``text`` in exactly this column's width (numbers right-aligned, labels left)."""
        if self.left:
            return text[: self.width].ljust(self.width)
        return fit(text, self.width)


def fit_columns(columns: Sequence[Column], width: int, gap: int = 1) -> tuple[Column, ...]:
    """The columns that fit in ``width`` cells, in their order, after dropping the most droppable."""
    kept = list(columns)
    while len(kept) > 1 and sum(c.width for c in kept) + gap * (len(kept) - 1) > width:
        victim = max(kept, key=lambda c: c.drop)
        if victim.drop == 0:
            break
        kept.remove(victim)
    return tuple(kept)


def header_line(columns: Sequence[Column], gap: int = 1) -> str:
    """The column titles, each placed like its values."""
    return (" " * gap).join(c.place(c.title) for c in columns)


def sign_style(value: Decimal | None) -> str:
    """The Content style of a signed amount: gains ``$success``, losses ``$error``, zero muted."""
    if not value:
        return MUTED
    return UP if value > ZERO else DOWN


def row_content(cells: Sequence[tuple[Column, str, str]], gap: int = 1) -> Content:
    """One table line from ``(column, text, style)`` cells, each placed in its column."""
    return Content(" " * gap).join(
        Content.styled(column.place(text), style) for column, text, style in cells
    )


def header_content(columns: Sequence[Column], gap: int = 1) -> Content:
    """The column titles as a bold, muted Content line."""
    return Content.styled(header_line(columns, gap), f"bold {MUTED}")


def pack(items: Sequence[Content], width: int, separator: str = "   ") -> list[Content]:
    """Lay ``items`` left to right, starting a new line where the next one would not fit."""
    lines: list[Content] = []
    line = Content()
    for item in items:
        if line and line.cell_length + len(separator) + item.cell_length > width:
            lines.append(line)
            line = Content()
        line = line + separator + item if line else item
    if line:
        lines.append(line)
    return lines


def labelled(label: str, value: str, style: str = "") -> Content:
    """``label value`` with the label muted, for packed status lines."""
    return Content.assemble((label, MUTED), " ", (value, style))
