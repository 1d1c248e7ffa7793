"""Pre-trade risk: the checks every order passes, their limits, and the kill switch."""

from engine.risk.config import RiskConfig
from engine.risk.engine import LimitUsage, RiskEngine, is_risk_reducing
from engine.risk.kill_switch import KillSwitch, KillSwitchState
from engine.risk.types import RiskCheck, RiskContext, RiskDecision, RiskViolation

__all__ = [
    "KillSwitch",
    "KillSwitchState",
    "LimitUsage",
    "RiskCheck",
    "RiskConfig",
    "RiskContext",
    "RiskDecision",
    "RiskEngine",
    "RiskViolation",
    "is_risk_reducing",
]
