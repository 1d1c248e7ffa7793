"""Equity and drawdown plots: in the terminal (text) and as a self-contained HTML file (SVG).

The terminal plot is a block-character area chart sized to the terminal; the HTML file has no
scripts and no external assets, so it opens anywhere, including from an SSH box's scp.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from engine.backtest.metrics import EquityPoint, drawdowns
from engine.core.clock import NEW_YORK, ns_to_datetime

_BLOCKS = " ▁▂▃▄▅▆▇█"


def _resample(values: Sequence[float], width: int) -> list[float]:
    """``width`` values: the last value in each of ``width`` equal slices (the bar's close)."""
    n = len(values)
    if n <= width:
        return list(values)
    return [values[min(n - 1, (i + 1) * n // width - 1)] for i in range(width)]


def text_chart(values: Sequence[float], *, width: int, height: int) -> list[str]:
    """Rows (top first) of a block-character area chart of ``values`` scaled to its range."""
    points = _resample(values, width)
    low, high = min(points), max(points)
    span = high - low or 1.0
    levels = [(v - low) / span * height * 8 for v in points]
    rows = []
    for row in range(height - 1, -1, -1):
        base = row * 8
        rows.append(
            "".join(_BLOCKS[max(0, min(8, round(level - base)))] for level in levels).rstrip()
        )
    return rows


def hanging_chart(depths: Sequence[float], *, width: int, height: int) -> list[str]:
    """Rows (top first) of bars hanging down from a zero line: drawdown depth, deepest lowest."""
    points = _resample(depths, width)
    deepest = max(points) or 1.0
    halves = [round(d / deepest * height * 2) for d in points]
    rows = []
    for row in range(height):
        cells = []
        for filled in halves:
            left = filled - row * 2
            cells.append("█" if left >= 2 else "▀" if left == 1 else " ")
        rows.append("".join(cells).rstrip())
    return rows


def terminal_plot(curve: Sequence[EquityPoint], *, width: int = 72, height: int = 10) -> str:
    """Equity above, drawdown below, with their ranges and the dates, as one text block."""
    equity = [float(p.equity) for p in curve]
    depth = drawdowns(curve)
    start = ns_to_datetime(curve[0].ts_ns, NEW_YORK).date()
    end = ns_to_datetime(curve[-1].ts_ns, NEW_YORK).date()
    lines = [f"equity  {min(equity):,.2f} .. {max(equity):,.2f}"]
    lines += ["  " + row for row in text_chart(equity, width=width, height=height)]
    lines.append(f"drawdown  0 .. -{max(depth):.2%}")
    lines += ["  " + row for row in hanging_chart(depth, width=width, height=max(3, height // 3))]
    lines.append(f"  {start.isoformat()}{' ' * max(1, width - 20)}{end.isoformat()}")
    return "\n".join(lines)


def _polyline(values: Sequence[float], x0: float, y0: float, w: float, h: float) -> str:
    low, high = min(values), max(values)
    span = high - low or 1.0
    n = max(1, len(values) - 1)
    return " ".join(
        f"{x0 + i * w / n:.1f},{y0 + h - (v - low) / span * h:.1f}" for i, v in enumerate(values)
    )


def write_html(curve: Sequence[EquityPoint], path: Path, *, title: str) -> Path:
    """Write the equity and drawdown chart to ``path`` (an HTML page with inline SVG)."""
    equity = [float(p.equity) for p in curve]
    down = [-d for d in drawdowns(curve)]
    start = ns_to_datetime(curve[0].ts_ns, NEW_YORK).date().isoformat()
    end = ns_to_datetime(curve[-1].ts_ns, NEW_YORK).date().isoformat()
    name = html.escape(title)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{name}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;background:#111;color:#ddd}}
svg{{background:#181818}} .eq{{stroke:#4fc3f7}} .dd{{stroke:#ef5350}}
polyline{{fill:none;stroke-width:1.5}} text{{fill:#aaa;font-size:12px}}</style></head>
<body><h1>{name}</h1>
<svg width="900" height="420" viewBox="0 0 900 420" role="img" aria-label="equity and drawdown">
<text x="10" y="18">equity {min(equity):,.2f} .. {max(equity):,.2f}</text>
<polyline class="eq" points="{_polyline(equity, 10, 28, 880, 250)}"/>
<text x="10" y="300">drawdown (worst {min(down):.2%})</text>
<polyline class="dd" points="{_polyline(down, 10, 310, 880, 80)}"/>
<text x="10" y="412">{start}</text><text x="820" y="412">{end}</text>
</svg></body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
