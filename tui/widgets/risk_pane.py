"""Risk: every limit's utilization as a bar, the kill switch, the portfolio's greeks and VaR, and
the latest rejections with reasons."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from textual.content import Content
from textual.widget import Widget

from engine.client import EngineSnapshot, PortfolioRisk, Rejection, RiskSnapshot
from engine.risk.engine import LimitUsage
from tui.widgets.format import MUTED, fit, fmt_compact, fmt_time, labelled, pack

PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"
TRACK = "░"
WARN_FROM = Decimal("0.5")
ALERT_ABOVE = Decimal("0.8")
BAR_MIN, BAR_MAX = 6, 30
USAGE_WIDTH = 13  # "400.0K/500.0K"
PCT_WIDTH = 5  # " 112%"
REASON_LINES = 2


def utilization_style(fraction: Decimal) -> str:
    """The bar's colour: ``$success`` under 50 %, ``$warning`` from 50 % to 80 %, ``$error`` above."""
    if fraction < WARN_FROM:
        return "$success"
    if fraction <= ALERT_ABOVE:
        return "$warning"
    return "$error"


def usage_bar(fraction: Decimal, width: int) -> tuple[str, str]:
    """The filled part (in eighths of a cell) and the empty track of a ``width``-cell bar."""
    eighths = int(max(Decimal(0), min(fraction, Decimal(1))) * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (PARTIAL_BLOCKS[part] if part else "")
    return filled, TRACK * (width - len(filled))


def _percent(fraction: Decimal) -> str:
    return f"{int(fraction * 100)}%"


def fmt_dollars(amount: float) -> str:
    """A risk figure in dollars, compact and signed where negative: ``$13.4K``, ``-$250.00``."""
    text = fmt_compact(abs(Decimal(f"{amount:.2f}")))
    return f"-${text}" if amount <= -0.005 else f"${text}"


def fmt_usage(amount: Decimal) -> str:
    """A limit's amount in at most six cells: whole units from 1,000 (``9,999``, not the
    ``9,999.50`` that would overflow the usage column), compact from 10,000 (``12.3K``)."""
    if abs(amount) >= 1_000:
        amount = amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return fmt_compact(amount)


def rejection_lines(risk: RiskSnapshot, width: int, room: int) -> list[Content]:
    """The rejections in ``room`` lines at most, newest first: ``✗ time order``, then its
    reasons wrapped (the newest gets every line it needs that fits)."""
    if not risk.rejections:
        return [Content.assemble(("REJECTIONS ", f"bold {MUTED}"), ("none", MUTED))]
    lines: list[Content] = []
    for rejection in risk.rejections:
        if room < 2:
            break
        lines.append(
            Content.assemble(
                ("✗ ", "bold $text-error"),
                (fmt_time(rejection.ts_ns), MUTED),
                " ",
                (rejection.summary, "bold"),
            )
        )
        reasons = _wrap(rejection, width, room - 1)
        lines.extend(Content.styled(f"  {line}", "$text-error") for line in reasons)
        room -= 1 + len(reasons)
    return lines


def _wrap(rejection: Rejection, width: int, max_lines: int | None = None) -> list[str]:
    """The rejection's reasons, each failed check starting its own line, wrapped to ``width``
    less the indent; cut to ``max_lines`` with an ellipsis on the last."""
    text_width = max(8, width - 2)
    lines = [
        line
        for reason in rejection.reason.split("; ")
        for line in textwrap.wrap(reason, text_width)
    ]
    if max_lines is None or len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    kept[-1] = textwrap.shorten(f"{kept[-1]} …", text_width, placeholder=" …")
    return kept


def portfolio_lines(risk: PortfolioRisk, width: int) -> list[Content]:
    """The portfolio section: net delta, gamma (per 1% move), vega (per vol point) and theta
    (per day) in dollars, then VaR and expected shortfall, packed together to ``width``."""
    title = Content.styled("PORTFOLIO", f"bold {MUTED}")
    greeks = risk.greeks
    if greeks is None:
        return pack([title, Content.styled(risk.reason, "$text-warning")], width, "  ")
    items = [
        title,
        labelled("Δ", fmt_dollars(greeks.delta_dollars)),
        labelled("Γ/1%", fmt_dollars(greeks.gamma_dollars)),
        labelled("vega", fmt_dollars(greeks.vega)),
        labelled("θ/d", fmt_dollars(greeks.theta)),
    ]
    label = f"VaR {risk.confidence * 100:g}% {risk.horizon_days:g}d"
    var = risk.var
    if var is None:
        items.append(labelled(label, risk.reason, MUTED))
    else:
        items += [
            labelled(label, fmt_dollars(var.var), "$text-warning"),
            labelled("ES", fmt_dollars(var.expected_shortfall), "$text-warning"),
        ]
    # One packed run, the title, greeks then VaR: the section sits under the rejections
    # and takes as few lines as the width allows.
    return pack(items, width, "  ")


class RiskPane(Widget):
    """The kill-switch state, limits with utilization bars, the newest rejections, then the
    portfolio's greeks and VaR (once ``show_portfolio`` has given them).

    When the kill switch is engaged it takes the top of the pane in a red banner
    with its reason and since-time, wrapped to the width. Rejections show newest
    first: a ``✗``, the time and the order, then the reasons wrapped; the newest keeps at least
    two reason lines and takes whatever height the portfolio leaves (all of a
    maximized pane), so the portfolio is what a short pane clips.
    """

    DEFAULT_CSS = """
    RiskPane {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    # Per-instance state (assigned on the instance); these are the initial values.
    _risk: RiskSnapshot | None = None
    _portfolio: PortfolioRisk | None = None

    def apply(self, snapshot: EngineSnapshot) -> None:
        """Take the risk state, if the pull carries a new one."""
        risk = snapshot.risk
        if risk is None or risk == self._risk:
            return
        self._risk = risk
        self.refresh()

    def show_portfolio(self, portfolio: PortfolioRisk) -> None:
        """Take the latest portfolio greeks and VaR (pulled every few seconds)."""
        if portfolio == self._portfolio:
            return
        self._portfolio = portfolio
        self.refresh()

    def render(self) -> Content:
        risk = self._risk
        if risk is None:
            return Content.styled("waiting for risk", MUTED)
        width, height = self.size.width, self.size.height
        head = self._kill(risk, width)
        newest = risk.rejections[0] if risk.rejections else None
        newest_lines = 1 if newest is None else 1 + min(REASON_LINES, len(_wrap(newest, width)))
        head += self._limits(risk.limits, width, height - len(head) - newest_lines)
        tail = [] if self._portfolio is None else portfolio_lines(self._portfolio, width)
        # The newest rejection outranks the portfolio: it keeps its summary and reasons,
        # and any room the portfolio leaves (a maximized pane) goes to more reason lines.
        room = max(newest_lines, height - len(head) - len(tail))
        return Content("\n").join([*head, *rejection_lines(risk, width, room), *tail])

    @classmethod
    def _limits(cls, limits: Sequence[LimitUsage], width: int, room: int) -> list[Content]:
        """One line a limit; with more limits than ``room`` lines, the most used ones (in
        their own order) and a line counting the rest, so the newest rejection stays in view."""
        if not limits:
            return [Content.styled("no limits enabled", MUTED)]
        shown = list(limits)
        if len(shown) > max(1, room):
            keep = max(1, room - 1)
            most_used = sorted(limits, key=lambda u: u.fraction, reverse=True)[:keep]
            shown = [u for u in limits if u in most_used]
        name_width = min(max(len(u.name) for u in shown), max(12, width // 3))
        lines = [cls._limit(usage, name_width, width) for usage in shown]
        if len(shown) < len(limits):
            left = len(limits) - len(shown)
            lines.append(Content.styled(f"… {left} more limits, less used (F10 shows all)", MUTED))
        return lines

    @staticmethod
    def _kill(risk: RiskSnapshot, width: int) -> list[Content]:
        if not risk.kill_engaged:
            return [labelled("kill switch", "off", "$success")]
        banner = "bold $text on $error"
        since = "" if risk.kill_since_ns is None else f" since {fmt_time(risk.kill_since_ns)}"
        # The since-time rides on the title, so that at the usual width the banner takes
        # three lines and leaves the rejections room; narrower, every line wraps.
        lines = [
            line.center(width)
            for line in textwrap.wrap(f"■ KILL SWITCH ENGAGED{since} ■", max(8, width - 2))
        ]
        texts = ["new risk blocked, only reducing orders"]
        if risk.kill_reason:
            texts.append(risk.kill_reason)
        for text in texts:
            lines.extend(f" {line}".ljust(width) for line in textwrap.wrap(text, max(8, width - 2)))
        return [Content.styled(line, banner) for line in lines]

    @staticmethod
    def _limit(usage: LimitUsage, name_width: int, width: int) -> Content:
        """``name  used/limit  ████▌░░░  NN%``: the bar takes what the other columns leave."""
        bar_width = max(BAR_MIN, min(BAR_MAX, width - name_width - USAGE_WIDTH - PCT_WIDTH - 3))
        filled, track = usage_bar(usage.fraction, bar_width)
        style = utilization_style(usage.fraction)
        return Content.assemble(
            (usage.name[:name_width].ljust(name_width), ""),
            " ",
            (fit(f"{fmt_usage(usage.used)}/{fmt_usage(usage.limit)}", USAGE_WIDTH), ""),
            " ",
            (filled, style),
            (track, MUTED),
            (fit(_percent(usage.fraction), PCT_WIDTH), style),
        )
