"""Pre-trade risk limits: one typed field per check, ``None`` (or ``False``) turns a check off.

The defaults suit a $100k paper account trading US equities. The settings loader
maps the ``[risk]`` TOML table onto these fields by name (``RiskConfig.field_names()``)
and builds the config with keyword arguments; ``__post_init__`` accepts ints,
strings and floats for the dollar and percent fields (floats through their
shortest repr, so ``2.5`` is exactly ``Decimal("2.5")``) and refuses anything
it cannot use with a ``ValueError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal

from engine.core.prices import ZERO, to_decimal

_DECIMAL_FIELDS = (
    "max_order_qty",
    "max_order_notional",
    "collar_soft_pct",
    "collar_hard_pct",
    "max_position_qty",
    "max_position_notional",
    "max_gross_exposure",
    "daily_loss_limit",
    "max_portfolio_delta",
    "max_portfolio_vega",
)
_INT_FIELDS = (
    "max_open_orders",
    "max_orders_per_second",
    "duplicate_window_ms",
    "max_option_contracts",
)
_BOOL_FIELDS = ("check_buying_power", "flatten_on_kill", "allow_short")


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(slots=True)
class RiskConfig:
    """Limits for every pre-trade check. Replace the engine's config to change limits live."""

    max_order_qty: Decimal | None = field(
        default=Decimal(10_000), metadata=_doc("Most shares in one order.")
    )
    max_order_notional: Decimal | None = field(
        default=Decimal(250_000), metadata=_doc("Most dollars in one order (qty x price).")
    )
    collar_soft_pct: Decimal | None = field(
        default=Decimal(2),
        metadata=_doc("An aggressive limit this % through the NBBO needs confirmation."),
    )
    collar_hard_pct: Decimal | None = field(
        default=Decimal(10),
        metadata=_doc("An aggressive limit this % through the NBBO is rejected."),
    )
    max_position_qty: Decimal | None = field(
        default=Decimal(20_000),
        metadata=_doc("Most shares held in one symbol, long or short, counting working orders."),
    )
    max_position_notional: Decimal | None = field(
        default=Decimal(300_000),
        metadata=_doc("Most dollars held in one symbol, long or short, counting working orders."),
    )
    max_gross_exposure: Decimal | None = field(
        default=Decimal(500_000),
        metadata=_doc("Most dollars held across all positions (sum of |qty| x price)."),
    )
    check_buying_power: bool = field(
        default=True, metadata=_doc("Reject risk-increasing orders above the buying power.")
    )
    max_open_orders: int | None = field(default=200, metadata=_doc("Most orders working at once."))
    max_orders_per_second: int | None = field(
        default=20, metadata=_doc("Most orders sent in any one-second window.")
    )
    duplicate_window_ms: int | None = field(
        default=500,
        metadata=_doc("An identical order from the same source within this many ms is refused."),
    )
    daily_loss_limit: Decimal | None = field(
        default=Decimal(5_000),
        metadata=_doc(
            "Day loss in dollars that blocks risk-increasing orders and trips the kill switch."
        ),
    )
    flatten_on_kill: bool = field(
        default=False, metadata=_doc("Close every position when the kill switch trips.")
    )
    allow_short: bool = field(
        default=True, metadata=_doc("Allow orders that open or add to a short.")
    )
    max_option_contracts: int | None = field(
        default=100, metadata=_doc("Most option contracts in one order.")
    )
    max_portfolio_delta: Decimal | None = field(
        default=Decimal(500_000),
        metadata=_doc(
            "Most dollar delta (stock plus option deltas x spot, counting working option "
            "orders) an option order may take the portfolio to, long or short."
        ),
    )
    max_portfolio_vega: Decimal | None = field(
        default=Decimal(10_000),
        metadata=_doc(
            "Most vega, in dollars per vol point, an option order may take the portfolio to."
        ),
    )
    var_horizon_days: Decimal = field(
        default=Decimal(1),
        metadata=_doc("Trading days the risk pane's Monte Carlo VaR and expected shortfall cover."),
    )
    var_confidence_pct: Decimal = field(
        default=Decimal(99),
        metadata=_doc("Confidence of the risk pane's VaR, in percent (e.g. 95 or 99)."),
    )
    var_paths: int = field(
        default=20_000, metadata=_doc("Monte Carlo paths behind the risk pane's VaR.")
    )

    def __post_init__(self) -> None:
        for name in _DECIMAL_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                raise ValueError(f"risk.{name} must be a number, not {value}")
            try:
                number = to_decimal(value)
            except ValueError:
                raise ValueError(f"risk.{name} must be a number, not '{value}'") from None
            if number <= ZERO:
                raise ValueError(f"risk.{name} must be positive, or None to turn the check off")
            setattr(self, name, number)
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"risk.{name} must be a whole number, not '{value}'")
            if value <= 0:
                raise ValueError(f"risk.{name} must be positive, or None to turn the check off")
        for name in ("var_horizon_days", "var_confidence_pct"):
            try:
                number = to_decimal(getattr(self, name))
            except ValueError:
                raise ValueError(
                    f"risk.{name} must be a number, not '{getattr(self, name)}'"
                ) from None
            setattr(self, name, number)
        if not ZERO < self.var_horizon_days <= 252:
            raise ValueError("risk.var_horizon_days must be above 0 and at most 252 trading days")
        if not 50 <= self.var_confidence_pct < 100:
            raise ValueError("risk.var_confidence_pct must be at least 50 and below 100")
        paths = self.var_paths
        if isinstance(paths, bool) or not isinstance(paths, int) or not 1_000 <= paths <= 10**7:
            raise ValueError(
                f"risk.var_paths must be a whole number from 1000 to 10000000, not '{paths}'"
            )
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"risk.{name} must be true or false, not '{getattr(self, name)}'")
        soft, hard = self.collar_soft_pct, self.collar_hard_pct
        if soft is not None and hard is not None and soft > hard:
            raise ValueError(
                f"risk.collar_soft_pct ({soft}%) must not be above risk.collar_hard_pct ({hard}%)"
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Every setting's name, in declaration order: the keys of the ``[risk]`` table."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def field_doc(cls, name: str) -> str:
        """One line describing setting ``name``, for generated docs and ``--help`` text."""
        for f in fields(cls):
            if f.name == name:
                return f.metadata["doc"]
        raise KeyError(f"risk has no setting '{name}'")
