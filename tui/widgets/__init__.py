"""The console's panes. Each takes ``EngineSnapshot``s through ``apply`` (``None`` parts mean
unchanged) and repaints only what changed."""

from tui.widgets.blotter import Blotter
from tui.widgets.chart import Chart
from tui.widgets.health_pane import HealthPane
from tui.widgets.positions import PositionsPane
from tui.widgets.quote_board import QuoteBoard
from tui.widgets.risk_pane import RiskPane

__all__ = ["Blotter", "Chart", "HealthPane", "PositionsPane", "QuoteBoard", "RiskPane"]
