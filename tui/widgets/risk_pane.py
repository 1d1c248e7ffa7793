"""Risk: every limit's utilization as a bar, the kill switch, the portfolio's greeks and VaR, and
the latest rejections with reasons."""

from __future__ import annotations

import textwrap
from decimal import Decimal

from textual.content import Content
from textual.widget import Widget

from engine.client import EngineSnapshot, PortfolioRisk, RiskSnapshot
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
VAR_HORIZON_DAYS = 1.0  # the portfolio VaR's horizon, trading days
VAR_CONFIDENCE = 0.99


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


def portfolio_lines(risk: PortfolioRisk, width: int) -> list[Content]:
    """The portfolio section: net delta, gamma (per 1% move), vega (per vol point) and theta
    (per day) in dollars, then VaR and expected shortfall, packed to ``width``."""
    lines = [Content.styled("PORTFOLIO", f"bold {MUTED}")]
    greeks = risk.greeks
    if greeks is None:
        return [*lines, Content.styled(risk.reason, "$text-warning")]
    lines += pack(
        [
            labelled("Δ", fmt_dollars(greeks.delta_dollars)),
            labelled("Γ/1%", fmt_dollars(greeks.gamma_dollars)),
            labelled("vega", fmt_dollars(greeks.vega)),
            labelled("θ/d", fmt_dollars(greeks.theta)),
        ],
        width,
        "  ",
    )
    horizon = f"{risk.horizon_days:g}d"
    confidence = f"{risk.confidence * 100:g}%"
    var = risk.var
    if var is None:
        lines.append(labelled(f"VaR {confidence} {horizon}", risk.reason, MUTED))
    else:
        lines += pack(
            [
                labelled(f"VaR {confidence} {horizon}", fmt_dollars(var.var), "$text-warning"),
                labelled("ES", fmt_dollars(var.expected_shortfall), "$text-warning"),
            ],
            width,
            "  ",
        )
    return lines


class RiskPane(Widget):
    """Limits with utilization bars, the kill-switch state, the portfolio's greeks and VaR
    (once ``show_portfolio`` has given them), and the newest rejections.

    When the kill switch is engaged it takes the top of the pane in a red banner
    with its reason and since-time. Rejections show newest first: time and the
    order, then the reasons wrapped to two lines.
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
        width = self.size.width
        lines = self._kill(risk, width)
        if risk.limits:
            name_width = min(max(len(u.name) for u in risk.limits), max(12, width // 3))
            lines.extend(self._limit(usage, name_width, width) for usage in risk.limits)
        else:
            lines.append(Content.styled("no limits enabled", MUTED))
        if self._portfolio is not None:
            lines.extend(portfolio_lines(self._portfolio, width))
        lines.append(Content.styled("REJECTIONS", f"bold {MUTED}"))
        if not risk.rejections:
            lines.append(Content.styled("none", MUTED))
        for rejection in risk.rejections:
            if len(lines) >= self.size.height:
                break
            lines.append(
                Content.assemble(
                    (fmt_time(rejection.ts_ns), MUTED), " ", (rejection.summary, "bold")
                )
            )
            reasons = textwrap.wrap(
                rejection.reason, max(8, width - 2), max_lines=REASON_LINES, placeholder=" …"
            )
            lines.extend(Content.styled(f"  {line}", "$text-error") for line in reasons)
        return Content("\n").join(lines)

    @staticmethod
    def _kill(risk: RiskSnapshot, width: int) -> list[Content]:
        if not risk.kill_engaged:
            return [labelled("kill switch", "off", "$success")]
        banner = "bold $text on $error"
        since = "" if risk.kill_since_ns is None else f"since {fmt_time(risk.kill_since_ns)} · "
        lines = [
            "■ KILL SWITCH ENGAGED ■".center(width),
            f" {since}new risk blocked, only reducing orders".ljust(width),
        ]
        if risk.kill_reason:
            lines.append(f" {risk.kill_reason}".ljust(width))
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
            (fit(f"{fmt_compact(usage.used)}/{fmt_compact(usage.limit)}", USAGE_WIDTH), ""),
            " ",
            (filled, style),
            (track, MUTED),
            (fit(_percent(usage.fraction), PCT_WIDTH), style),
        )
