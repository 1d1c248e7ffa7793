"""The JSON exit report of a headless run.

Money is written as decimal strings (never floats) so a reader can check it to
the cent; timestamps as ISO-8601 UTC.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.clock import ns_to_datetime

if TYPE_CHECKING:
    from engine.bots.api import Opportunity
    from engine.node import Engine
    from engine.orders.script import OrderScript

REPORT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _iso(ts_ns: int | None) -> str | None:
    return None if ts_ns is None else ns_to_datetime(ts_ns).isoformat()


def build_report(engine: Engine, script: OrderScript | None) -> dict[str, Any]:
    oms = engine.oms
    account = oms.account()
    orders = [
        {**_plain(order), "created": _iso(order.created_ns), "updated": _iso(order.updated_ns)}
        for order in oms.orders()
    ]
    fills = [{**_plain(fill), "time": _iso(fill.ts_ns)} for fill in oms.fills()]
    positions = [
        {
            **_plain(p),
            "unrealized_pnl": str(p.unrealized_pnl),
            "market_value": str(p.market_value),
        }
        for p in oms.positions()
    ]
    rejections = [
        {
            "time": _iso(decision.ts_ns),
            "symbol": decision.request.symbol,
            "side": decision.request.side.value,
            "qty": str(decision.request.qty),
            "checks": [v.check.value for v in decision.violations],
            "reason": decision.reason,
        }
        for decision in oms.rejections()
    ]
    stats = engine.driver.stats
    kill = engine.risk.kill_switch
    return {
        "version": REPORT_VERSION,
        "mode": engine.settings.mode.value,
        "started": _iso(engine.clock_start_ns),
        "ended": _iso(engine.clock.now_ns()),
        "account": _plain(account),
        "positions": positions,
        "orders": orders,
        "fills": fills,
        "risk_rejections": rejections,
        "kill_switch": {
            "engaged": kill.engaged,
            "reason": kill.reason,
            "since": _iso(kill.since_ns),
        },
        "script": [_plain(result) for result in script.results] if script else [],
        "feed": {
            "events": stats.events,
            "quotes": stats.quotes,
            "trades": stats.trades,
            "bars": stats.bars,
            "bad_rows": engine.bad_rows(),
        },
        "alerts": [
            {"time": _iso(a.ts_ns), "severity": a.severity.value, "message": a.message}
            for a in engine.alerts
        ],
        **bots_report(engine),
    }


def _opportunity(opportunity: Opportunity) -> dict[str, Any]:
    return {
        "id": opportunity.id,
        "bot": opportunity.bot,
        "time": _iso(opportunity.ts_ns),
        "symbol": opportunity.symbol,
        "side": opportunity.side.value,
        "qty": str(opportunity.qty),
        "limit": None if opportunity.limit is None else str(opportunity.limit),
        "confidence": round(opportunity.confidence, 4),
        "rationale": opportunity.rationale,
        "expires": _iso(opportunity.expires_at),
    }


def bots_report(engine: Engine) -> dict[str, Any]:
    """Each bot's state, budget and performance, and every opportunity advised this run."""
    service = engine.bots
    bots = []
    for view in service.views():
        perf = view.performance
        bots.append(
            {
                "name": view.name,
                "kind": view.kind,
                "state": view.state.value,
                "mode": view.mode.value,
                "error": view.error,
                "params": view.params,
                "budget": _plain(view.budget),
                "performance": {
                    "realized_pnl": str(perf.realized_pnl),
                    "unrealized_pnl": str(perf.unrealized_pnl),
                    "fees": str(perf.fees),
                    "total_pnl": str(perf.total_pnl),
                    "trades": perf.trades,
                    "round_trips": perf.round_trips,
                    "wins": perf.wins,
                    "win_rate": perf.win_rate,
                    "sharpe": perf.sharpe,
                    "notional": str(perf.notional),
                    "positions": perf.positions,
                },
                "last_signal": view.last_signal,
                "last_signal_time": _iso(view.last_signal_ns),
                "signals": len(service.signals(view.name)),
            }
        )
    return {"bots": bots, "advised": [_opportunity(o) for o in service.advised]}


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)
