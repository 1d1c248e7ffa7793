"""Execution algorithms: large orders worked as parent orders, sent as child orders through risk.

A parent (``Parent``) is what the trader asked for ("buy 5000 AAPL twap 30m"); an
algo (TWAP, VWAP, POV, Iceberg) decides, on the injected clock's timers and on
bus events, when to send how much. Every child goes through
``OrderManager.submit`` and so through the same risk checks as a typed order;
children carry ``parent_id`` and ``source="algo:<parent id>"``. The
``ExecutionService`` the Engine owns keeps the parents, journals them and
answers the console's pause, resume and cancel.
"""

from engine.execution.config import ChildPricing, ExecutionConfig, RestartPolicy
from engine.execution.curve import UShapeCurve, VolumeCurve
from engine.execution.parent import Parent, ParentState
from engine.execution.quality import ExecutionQuality, measure
from engine.execution.service import ExecutionService, ParentResult
from engine.execution.spec import AlgoSpec, IcebergSpec, PovSpec, TwapSpec, VwapSpec
from engine.execution.view import ParentView, parent_view

__all__ = [
    "AlgoSpec",
    "ChildPricing",
    "ExecutionConfig",
    "ExecutionQuality",
    "ExecutionService",
    "IcebergSpec",
    "Parent",
    "ParentResult",
    "ParentState",
    "ParentView",
    "PovSpec",
    "RestartPolicy",
    "TwapSpec",
    "UShapeCurve",
    "VolumeCurve",
    "VwapSpec",
    "measure",
    "parent_view",
]
