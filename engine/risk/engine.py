"""Pre-trade risk: every order passes ``RiskEngine.check`` before it can reach a broker.

``check`` is pure and evaluates every enabled check, so the console can preview
all that would fail on each keystroke. Each violation is one sentence with the
numbers. A check whose limit is ``None`` (or ``False``) in ``RiskConfig`` never
fires. Checks that need a valid quantity or price are skipped when that field is
itself invalid: it is already a hard violation, and its numbers would mislead.

Definitions the checks share
    position: ``ctx.position_qty(symbol)``, signed (negative is short).
    working orders: ``ctx.open_orders()`` for the symbol, counted by leaves qty.
    risk-reducing: ``is_risk_reducing(request, reducible)``, where ``reducible`` is
        the position minus the working orders already on its opposite side
        (never past flat). An order is reducing when it is on the opposite side
        of that and no larger, so several working sells cannot add up to a
        short. Everything else is risk-increasing.
    order price: the limit price for limit and stop-limit orders, the stop price
        for stops; for market and trailing-stop orders the NBBO side the order
        would take (ask for a buy, bid for a sell), else ``MarketView.last_price``.
    notional: qty x order price x the contract multiplier (100 for an OCC option
        symbol, whose prices are per share; 1 for a stock). Every dollar check below
        values options the same way.

The checks, in the order their violations are listed
    KILL_SWITCH   engaged: only risk-reducing orders pass.
    SYMBOL        ``ctx.instrument(symbol)`` is None (unknown) or not tradable.
    QUANTITY      qty must be positive. A fractional qty needs a fractionable
                  instrument and, as at Alpaca, a market or limit DAY order.
    PRICE         each type's prices must be present, positive, and only those it
                  takes: limit (limit, stop-limit), stop (stop, stop-limit),
                  exactly one of trail price / trail percent (trailing stop).
    TICK          limit and stop prices on the Reg NMS grid (``on_tick_grid``); an
                  option's on the penny-pilot grid ($0.01 under $3, $0.05 from $3).
    MARKET_PRICE  a market or trailing-stop order with no quote and no trade yet
                  cannot be priced, so any enabled dollar check makes it a hard
                  violation: "no market price for SYMBOL yet".
    SHORTABLE     a sell that would take position - working sells below zero,
                  when ``allow_short`` is off or the instrument is not shortable
                  or is hard to borrow (Alpaca shorts easy-to-borrow names only).
    MAX_ORDER_QTY       qty above ``max_order_qty``.
    MAX_ORDER_NOTIONAL  notional above ``max_order_notional``.
    COLLAR        aggressive limit prices only: a buy limit measured above the
                  ask, a sell limit below the bid (else the last price). Beyond
                  ``collar_soft_pct`` it is a soft violation (needs the trader's
                  confirmation); beyond ``collar_hard_pct`` it is hard. A passive
                  limit far from the market is not a breach, and neither is any
                  stop price (a far stop is simply far away; one already through
                  the market is a market order). A stop-limit's limit is measured
                  from the stop when the stop is beyond the NBBO, since that is
                  where the market will be when it triggers. A limit with no
                  market price to measure against is a soft violation.
    MAX_POSITION  position + the order + the working orders on the order's side,
                  signed (conservative: as if they all filled); its size is
                  checked against ``max_position_qty`` and, valued at the order
                  price, ``max_position_notional``. An order that leaves the
                  position no larger than it is now always passes, so a trader
                  over a limit lowered intraday can still reduce.
    GROSS_EXPOSURE  ``ctx.gross_exposure()`` + the growth in |position| x order
                  price, for orders that grow the position; working orders are
                  not counted.
    BUYING_POWER  risk-increasing orders only: notional above ``ctx.buying_power()``.
    MAX_OPEN_ORDERS  ``max_open_orders`` orders are working already.
    THROTTLE      ``max_orders_per_second`` orders were recorded by
                  ``record_submitted`` in the last second, a sliding window on
                  the engine's clock (an order recorded at t counts until t + 1 s).
    DUPLICATE     the same source sent the same symbol, side, qty, type and
                  prices less than ``duplicate_window_ms`` ago: a double Enter.
    DAILY_LOSS    ``ctx.day_pnl()`` at or below -``daily_loss_limit``: risk-increasing
                  orders are refused. The OMS also engages the kill switch then.
    OPTION_CONTRACTS, PORTFOLIO_DELTA, PORTFOLIO_VEGA  option orders only: contracts
                  per order, and the portfolio's dollar delta and vega after the order
                  (engine.risk.options, greeks from ``option_greeks``).

While the kill switch is engaged, risk-reducing orders skip the open-order and
throttle limits, so a flatten of many positions is never held back by them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.core.clock import NEW_YORK, NS_PER_MS, NS_PER_SECOND, Clock, ns_to_datetime
from engine.core.conflate import MarketView
from engine.core.models import Instrument, Order, OrderRequest, OrderType, Quote, Side, TimeInForce
from engine.core.prices import (
    CENT,
    ZERO,
    cents,
    contract_multiplier,
    is_option_symbol,
    on_tick_grid,
    symbol_tick_size,
)
from engine.risk.config import RiskConfig
from engine.risk.kill_switch import KillSwitch
from engine.risk.options import check_option_order
from engine.risk.types import (
    OptionGreeks,
    RiskCheck,
    RiskContext,
    RiskDecision,
    RiskViolation,
)

_HUNDRED = Decimal(100)
_FRACTIONAL_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
_LIMIT_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOP_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_TYPE_NAMES = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP: "stop",
    OrderType.STOP_LIMIT: "stop-limit",
    OrderType.TRAILING_STOP: "trailing stop",
}
_Signature = tuple[object, ...]


@dataclass(slots=True, frozen=True)
class LimitUsage:
    """How much of one limit is used now, for the console's risk pane.

    ``fraction`` is used / limit: 1 is at the limit, above 1 is over it.
    """

    name: str
    used: Decimal
    limit: Decimal
    fraction: Decimal
    check: RiskCheck


def is_risk_reducing(request: OrderRequest, position_qty: Decimal) -> bool:
    """True when ``request`` can only shrink ``position_qty`` toward flat, never through it."""
    if position_qty > ZERO:
        return request.side is Side.SELL and ZERO < request.qty <= position_qty
    if position_qty < ZERO:
        return request.side is Side.BUY and ZERO < request.qty <= -position_qty
    return False


class RiskEngine:
    """The pre-trade gate: ``check`` (pure), ``record_submitted`` and the kill switch.

    Limits are read once from the config; assign a new ``RiskConfig`` to
    ``engine.config`` to change them live rather than mutating the old one.
    """

    def __init__(self, config: RiskConfig, clock: Clock, market: MarketView) -> None:
        self._clock = clock
        self._market = market
        self.kill_switch = KillSwitch()
        # Where option orders' delta and vega come from; the engine sets it where chains exist.
        self.option_greeks: OptionGreeks | None = None
        self._sent: deque[int] | None = None
        self._recent: dict[_Signature, int] = {}
        self._recent_order: deque[tuple[int, _Signature]] = deque()
        self.config = config

    @property
    def config(self) -> RiskConfig:
        """The limits in force; assigning a new config re-reads every limit."""
        return self._config

    @config.setter
    def config(self, config: RiskConfig) -> None:
        self._config = config
        self._max_qty = config.max_order_qty
        self._max_notional = config.max_order_notional
        self._soft_pct = config.collar_soft_pct
        self._hard_pct = config.collar_hard_pct
        self._soft_frac = None if self._soft_pct is None else self._soft_pct / _HUNDRED
        self._hard_frac = None if self._hard_pct is None else self._hard_pct / _HUNDRED
        self._collar_on = self._soft_pct is not None or self._hard_pct is not None
        self._max_pos_qty = config.max_position_qty
        self._max_pos_notional = config.max_position_notional
        self._position_on = self._max_pos_qty is not None or self._max_pos_notional is not None
        self._max_gross = config.max_gross_exposure
        self._check_bp = config.check_buying_power
        self._dollar_checks_on = (
            self._max_notional is not None
            or self._max_pos_notional is not None
            or self._max_gross is not None
            or self._check_bp
        )
        self._max_open = config.max_open_orders
        self._loss_limit = config.daily_loss_limit
        self._allow_short = config.allow_short
        rate = config.max_orders_per_second
        if rate is None:
            self._sent = None
        else:
            # Only the last `rate` sends can decide whether the next one is over the rate.
            self._sent = deque(self._sent or (), maxlen=rate)
        self._rate = rate
        window_ms = config.duplicate_window_ms
        self._dup_ms = window_ms
        self._dup_ns = None if window_ms is None else window_ms * NS_PER_MS
        if window_ms is None:
            self._recent.clear()
            self._recent_order.clear()

    # -- the check -------------------------------------------------------------------------

    def check(
        self, request: OrderRequest, ctx: RiskContext, *, confirmed: bool = False
    ) -> RiskDecision:
        """Every violation ``request`` would cause now; changes no state.

        ``confirmed`` is the trader's answer to soft violations (the collar).
        """
        now = self._clock.now_ns()
        out: list[RiskViolation] = []
        symbol = request.symbol
        qty = request.qty
        buying = request.side is Side.BUY
        otype = request.type
        instrument = ctx.instrument(symbol)
        orders = ctx.open_orders()
        position = ctx.position_qty(symbol)
        buy_working, sell_working = _working(orders, symbol) if orders else (ZERO, ZERO)
        qty_ok = qty.is_finite() and qty > ZERO
        reducing = qty_ok and is_risk_reducing(
            request, _reducible(position, buy_working, sell_working)
        )
        kill = self.kill_switch

        if kill.engaged and not reducing:
            out.append(RiskViolation(RiskCheck.KILL_SWITCH, _kill_message(kill)))

        if instrument is None:
            out.append(RiskViolation(RiskCheck.SYMBOL, f"{symbol} is not a known symbol"))
        elif not instrument.tradable:
            out.append(RiskViolation(RiskCheck.SYMBOL, f"{symbol} is not tradable"))

        if not qty_ok:
            out.append(
                RiskViolation(RiskCheck.QUANTITY, f"quantity {qty} must be a positive number")
            )
        elif qty != qty.to_integral_value():
            if instrument is not None and not instrument.fractionable:
                out.append(
                    RiskViolation(
                        RiskCheck.QUANTITY,
                        f"{symbol} does not trade fractional shares (quantity {_qty(qty)})",
                    )
                )
            elif otype not in _FRACTIONAL_TYPES or request.tif is not TimeInForce.DAY:
                out.append(
                    RiskViolation(
                        RiskCheck.QUANTITY,
                        f"fractional quantity {_qty(qty)} is allowed only on "
                        "market or limit DAY orders",
                    )
                )

        limit = request.limit_price
        stop = request.stop_price
        limit_ok = _check_price(out, otype, "limit", limit, otype in _LIMIT_TYPES, symbol)
        stop_ok = _check_price(out, otype, "stop", stop, otype in _STOP_TYPES, symbol)
        if (
            otype is OrderType.TRAILING_STOP
            or request.trail_price is not None
            or request.trail_percent is not None
        ):
            _check_trail(out, request)

        quote = None
        if otype is OrderType.LIMIT or otype is OrderType.STOP_LIMIT:
            price = limit if limit_ok else None
        elif otype is OrderType.STOP:
            price = stop if stop_ok else None
        else:
            quote = self._market.quote(symbol)
            price = None
            if quote is not None:
                touch = quote.ask if buying else quote.bid
                if touch > ZERO:
                    price = touch
            if price is None:
                price = self._market.last_price(symbol)
            if price is None and qty_ok and self._dollar_checks_on:
                out.append(
                    RiskViolation(RiskCheck.MARKET_PRICE, f"no market price for {symbol} yet")
                )

        if qty_ok and not buying:
            self._check_short(out, request, instrument, position, sell_working)

        max_qty = self._max_qty
        if max_qty is not None and qty_ok and qty > max_qty:
            out.append(
                RiskViolation(
                    RiskCheck.MAX_ORDER_QTY,
                    f"order quantity {_qty(qty)} is above the max order quantity of "
                    f"{_qty(max_qty)}",
                )
            )

        multiplier = contract_multiplier(symbol)
        if price is not None:
            price *= multiplier  # dollars per unit from here on: a contract is 100 shares
        notional = qty * price if qty_ok and price is not None else None
        if (
            notional is not None
            and self._max_notional is not None
            and notional > self._max_notional
        ):
            out.append(
                RiskViolation(
                    RiskCheck.MAX_ORDER_NOTIONAL,
                    f"order notional {_money(notional)} is above the max order notional of "
                    f"{_money(self._max_notional)}",
                )
            )

        if qty_ok and is_option_symbol(symbol):
            config = self._config
            check_option_order(
                out,
                request,
                orders,
                self.option_greeks,
                max_contracts=config.max_option_contracts,
                max_delta=config.max_portfolio_delta,
                max_vega=config.max_portfolio_vega,
            )

        if self._collar_on and limit is not None and limit_ok:
            if quote is None:
                quote = self._market.quote(symbol)
            self._check_collar(out, request, limit, stop if stop_ok else None, quote)

        if self._position_on and qty_ok:
            self._check_position(out, request, position, buy_working, sell_working, price)

        if notional is not None and self._max_gross is not None:
            grow = abs(position + qty if buying else position - qty) - abs(position)
            if grow > ZERO:
                gross = ctx.gross_exposure() + grow * price
                if gross > self._max_gross:
                    out.append(
                        RiskViolation(
                            RiskCheck.GROSS_EXPOSURE,
                            f"gross exposure after the order would be {_money(gross)}, above "
                            f"the max gross exposure of {_money(self._max_gross)}",
                        )
                    )

        if notional is not None and self._check_bp and not reducing:
            buying_power = ctx.buying_power()
            if notional > buying_power:
                out.append(
                    RiskViolation(
                        RiskCheck.BUYING_POWER,
                        f"order notional {_money(notional)} is above the buying power of "
                        f"{_money(buying_power)}",
                    )
                )

        exempt = kill.engaged and reducing
        max_open = self._max_open
        if max_open is not None and not exempt and len(orders) >= max_open:
            out.append(
                RiskViolation(
                    RiskCheck.MAX_OPEN_ORDERS,
                    f"{len(orders)} orders are open already, and the max is {max_open}",
                )
            )

        sent = self._sent
        if (
            sent is not None
            and not exempt
            and len(sent) == self._rate
            and sent[0] > now - NS_PER_SECOND
        ):
            out.append(
                RiskViolation(
                    RiskCheck.THROTTLE,
                    f"{self._rate} orders were sent in the last second, and the throttle "
                    f"allows {self._rate} per second",
                )
            )

        if self._dup_ns is not None:
            seen = self._recent.get(_signature(request))
            if seen is not None and now - seen < self._dup_ns:
                out.append(
                    RiskViolation(
                        RiskCheck.DUPLICATE,
                        f"the same order was sent {(now - seen) // NS_PER_MS} ms ago, within "
                        f"the {self._dup_ms} ms duplicate window",
                    )
                )

        loss_limit = self._loss_limit
        if loss_limit is not None and not reducing:
            pnl = ctx.day_pnl()
            if pnl <= -loss_limit:
                out.append(
                    RiskViolation(
                        RiskCheck.DAILY_LOSS,
                        f"day loss {_money(-pnl)} has reached the daily loss limit of "
                        f"{_money(loss_limit)}: only orders that reduce a position are allowed",
                    )
                )

        return RiskDecision(request, tuple(out), now, confirmed)

    def _check_short(
        self,
        out: list[RiskViolation],
        request: OrderRequest,
        instrument: Instrument | None,
        position: Decimal,
        sell_working: Decimal,
    ) -> None:
        if self._allow_short:
            if instrument is None or (instrument.shortable and instrument.easy_to_borrow):
                return
            why = (
                f"{request.symbol} is not shortable"
                if not instrument.shortable
                else f"{request.symbol} is hard to borrow"
            )
        else:
            why = "shorting is turned off"
        after = position - sell_working - request.qty
        if after >= ZERO:
            return
        counting = f" counting {_qty(sell_working)} working to sell" if sell_working else ""
        out.append(
            RiskViolation(
                RiskCheck.SHORTABLE,
                f"selling {_qty(request.qty)} {request.symbol} would take the position to "
                f"{_qty(after)} shares{counting}, and {why}",
            )
        )

    def _check_collar(
        self,
        out: list[RiskViolation],
        request: OrderRequest,
        limit: Decimal,
        stop: Decimal | None,
        quote: Quote | None,
    ) -> None:
        buying = request.side is Side.BUY
        reference: Decimal | None = None
        label = "ask" if buying else "bid"
        if quote is not None:
            touch = quote.ask if buying else quote.bid
            if touch > ZERO:
                reference = touch
        if reference is None:
            reference = self._market.last_price(request.symbol)
            label = "last price"
        if stop is not None and (
            reference is None or (buying and stop > reference) or (not buying and stop < reference)
        ):
            reference, label = stop, "stop"
        if reference is None:
            out.append(
                RiskViolation(
                    RiskCheck.COLLAR,
                    f"there is no market price for {request.symbol} yet to check limit "
                    f"{_px(limit)} against the collar",
                    soft=True,
                )
            )
            return
        through = limit - reference if buying else reference - limit
        if through <= ZERO:
            return
        hard_frac = self._hard_frac
        soft_frac = self._soft_frac
        hard = hard_frac is not None and through > reference * hard_frac
        if not hard and (soft_frac is None or through <= reference * soft_frac):
            return
        pct = through / reference * _HUNDRED
        where = (
            f"limit {_px(limit)} is {pct:.1f}% {'above' if buying else 'below'} the "
            f"{label} {_px(reference)}"
        )
        if hard:
            out.append(
                RiskViolation(
                    RiskCheck.COLLAR,
                    f"{where}, beyond the {_pct(self._hard_pct)}% hard collar",
                )
            )
        else:
            out.append(
                RiskViolation(
                    RiskCheck.COLLAR,
                    f"{where}; the collar needs confirmation beyond {_pct(self._soft_pct)}%",
                    soft=True,
                )
            )

    def _check_position(
        self,
        out: list[RiskViolation],
        request: OrderRequest,
        position: Decimal,
        buy_working: Decimal,
        sell_working: Decimal,
        price: Decimal | None,
    ) -> None:
        if request.side is Side.BUY:
            working = buy_working
            after = position + request.qty + working
        else:
            working = sell_working
            after = position - request.qty - working
        size = abs(after)
        if size <= abs(position):
            return
        counting = f" counting {_qty(working)} working" if working else ""
        units = "contracts" if is_option_symbol(request.symbol) else "shares"
        max_qty = self._max_pos_qty
        if max_qty is not None and size > max_qty:
            out.append(
                RiskViolation(
                    RiskCheck.MAX_POSITION,
                    f"{request.symbol} position after the order would be {_qty(after)} "
                    f"{units}{counting}, above the max position of {_qty(max_qty)}",
                )
            )
        max_notional = self._max_pos_notional
        if max_notional is not None and price is not None and size * price > max_notional:
            out.append(
                RiskViolation(
                    RiskCheck.MAX_POSITION,
                    f"{request.symbol} position after the order would be "
                    f"{_money(size * price)}{counting}, above the max position notional of "
                    f"{_money(max_notional)}",
                )
            )

    # -- state -----------------------------------------------------------------------------

    def record_submitted(self, request: OrderRequest) -> None:
        """Count an accepted order in the throttle and duplicate windows, at the clock's now."""
        now = self._clock.now_ns()
        if self._sent is not None:
            self._sent.append(now)
        if self._dup_ns is not None:
            signature = _signature(request)
            self._recent[signature] = now
            recent_order = self._recent_order
            recent_order.append((now, signature))
            cutoff = now - self._dup_ns
            while recent_order[0][0] <= cutoff:
                ts_ns, old = recent_order.popleft()
                if self._recent.get(old) == ts_ns:
                    del self._recent[old]

    def daily_loss_breached(self, day_pnl: Decimal) -> bool:
        """True when ``day_pnl`` is at or below minus the daily loss limit (never if it is off)."""
        return self._loss_limit is not None and day_pnl <= -self._loss_limit

    def utilization(
        self, ctx: RiskContext, symbols: Iterable[str] | None = None
    ) -> list[LimitUsage]:
        """How much of each enabled limit is in use now, for the console's risk pane.

        The largest position is looked for among ``symbols``; by default, every
        symbol the market view has seen plus those with working orders (the
        risk context cannot list positions itself).
        """
        usages: list[LimitUsage] = []
        if self._sent is not None and self._rate is not None:
            cutoff = self._clock.now_ns() - NS_PER_SECOND
            rate = sum(1 for ts_ns in self._sent if ts_ns > cutoff)
            usages.append(
                _usage("order rate", Decimal(rate), Decimal(self._rate), RiskCheck.THROTTLE)
            )
        orders = ctx.open_orders()
        if self._max_open is not None:
            usages.append(
                _usage(
                    "open orders",
                    Decimal(len(orders)),
                    Decimal(self._max_open),
                    RiskCheck.MAX_OPEN_ORDERS,
                )
            )
        if self._max_gross is not None:
            usages.append(
                _usage(
                    "gross exposure",
                    ctx.gross_exposure(),
                    self._max_gross,
                    RiskCheck.GROSS_EXPOSURE,
                )
            )
        if self._loss_limit is not None:
            loss = max(-ctx.day_pnl(), ZERO)
            usages.append(_usage("daily loss", loss, self._loss_limit, RiskCheck.DAILY_LOSS))
        if self._position_on:
            usages.extend(self._position_usage(ctx, orders, symbols))
        return usages

    def _position_usage(
        self, ctx: RiskContext, orders: Sequence[Order], symbols: Iterable[str] | None
    ) -> list[LimitUsage]:
        if symbols is None:
            symbols = set(self._market.symbols()).union(order.symbol for order in orders)
        largest_qty, qty_symbol = ZERO, ""
        largest_value, value_symbol = ZERO, ""
        for symbol in sorted(symbols):
            size = abs(ctx.position_qty(symbol))
            if size > largest_qty:
                largest_qty, qty_symbol = size, symbol
            mark = self._market.last_price(symbol)
            if mark is not None:
                value = size * mark * contract_multiplier(symbol)
                if value > largest_value:
                    largest_value, value_symbol = value, symbol
        usages: list[LimitUsage] = []
        if self._max_pos_qty is not None:
            usages.append(
                _usage(
                    f"pos qty {qty_symbol}".rstrip(),
                    largest_qty,
                    self._max_pos_qty,
                    RiskCheck.MAX_POSITION,
                )
            )
        if self._max_pos_notional is not None:
            usages.append(
                _usage(
                    f"pos $ {value_symbol}".rstrip(),
                    largest_value,
                    self._max_pos_notional,
                    RiskCheck.MAX_POSITION,
                )
            )
        return usages


def _working(orders: Sequence[Order], symbol: str) -> tuple[Decimal, Decimal]:
    """Leaves qty of the open orders for ``symbol``: (buys, sells)."""
    buys = sells = ZERO
    for order in orders:
        if order.symbol == symbol:
            if order.side is Side.BUY:
                buys += order.leaves_qty
            else:
                sells += order.leaves_qty
    return buys, sells


def _reducible(position: Decimal, buy_working: Decimal, sell_working: Decimal) -> Decimal:
    """The position left to reduce once the working orders against it fill, never past flat."""
    if position > ZERO:
        return max(position - sell_working, ZERO)
    if position < ZERO:
        return min(position + buy_working, ZERO)
    return ZERO


def _check_price(
    out: list[RiskViolation],
    otype: OrderType,
    label: str,
    price: Decimal | None,
    needed: bool,
    symbol: str,
) -> bool:
    """Append what is wrong with one of the order's prices; True if it is usable."""
    if price is None:
        if needed:
            out.append(
                RiskViolation(
                    RiskCheck.PRICE, f"a {_TYPE_NAMES[otype]} order needs a {label} price"
                )
            )
        return False
    if not needed:
        out.append(
            RiskViolation(RiskCheck.PRICE, f"a {_TYPE_NAMES[otype]} order takes no {label} price")
        )
        return False
    if not price.is_finite() or price <= ZERO:
        out.append(RiskViolation(RiskCheck.PRICE, f"{label} price {price} must be positive"))
        return False
    if not on_tick_grid(price, symbol):
        out.append(
            RiskViolation(
                RiskCheck.TICK,
                f"{label} price {price} is off the ${symbol_tick_size(symbol, price)} tick grid",
            )
        )
    return True


def _check_trail(out: list[RiskViolation], request: OrderRequest) -> None:
    trail_price, trail_percent = request.trail_price, request.trail_percent
    if request.type is not OrderType.TRAILING_STOP:
        out.append(
            RiskViolation(RiskCheck.PRICE, f"a {_TYPE_NAMES[request.type]} order takes no trail")
        )
    elif trail_price is None and trail_percent is None:
        out.append(
            RiskViolation(RiskCheck.PRICE, "a trailing stop needs a trail price or a trail percent")
        )
    elif trail_price is not None and trail_percent is not None:
        out.append(
            RiskViolation(
                RiskCheck.PRICE, "a trailing stop takes a trail price or a trail percent, not both"
            )
        )
    elif trail_price is not None and not (trail_price.is_finite() and trail_price > ZERO):
        out.append(RiskViolation(RiskCheck.PRICE, f"trail price {trail_price} must be positive"))
    elif trail_percent is not None and not (trail_percent.is_finite() and trail_percent > ZERO):
        out.append(
            RiskViolation(RiskCheck.PRICE, f"trail percent {trail_percent} must be positive")
        )


def _signature(request: OrderRequest) -> _Signature:
    return (
        request.source,
        request.symbol,
        request.side,
        request.qty,
        request.type,
        request.limit_price,
        request.stop_price,
        request.trail_price,
        request.trail_percent,
    )


def _usage(name: str, used: Decimal, limit: Decimal, check: RiskCheck) -> LimitUsage:
    return LimitUsage(name, used, limit, used / limit, check)


def _kill_message(kill: KillSwitch) -> str:
    since = (
        ""
        if kill.since_ns is None
        else f" since {ns_to_datetime(kill.since_ns, NEW_YORK):%H:%M:%S}"
    )
    why = f" ({kill.reason})" if kill.reason else ""
    return f"kill switch engaged{since}{why}: only orders that reduce a position are allowed"


def _qty(qty: Decimal) -> str:
    return f"{qty:,f}"


def _px(price: Decimal) -> str:
    """A price with at least cents: 187.1 -> 187.10, 0.5012 stays."""
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        price = price.quantize(CENT)
    return f"{price:f}"


def _money(amount: Decimal) -> str:
    sign = "-" if amount < ZERO else ""
    return f"{sign}${abs(cents(amount)):,.2f}"


def _pct(pct: Decimal | None) -> str:
    """A configured percent as typed: 2 -> "2", 2.50 -> "2.5"."""
    return "" if pct is None else f"{pct.normalize():f}"
