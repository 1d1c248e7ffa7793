"""The order language: one line of text in, one typed command out.

The same parser serves the headless engine (order scripts) and the console's
command line. Keywords are case-insensitive; symbols are upper-cased; order ids
keep their case. Tokens are separated by spaces, except ``@``, which may touch
its neighbours (``buy 100 aapl@187.5``).

Grammar::

    buy|b|sell|s QTY SYMBOL [modifier ...]
        modifiers, in any order after the symbol:
          PRICE                    a bare price is the limit price
          lmt|limit|@ PRICE        limit price
          stp|stop PRICE           stop price; with a limit price the order is a stop-limit
          trail AMOUNT             trailing stop by dollars (trail 0.50)
          trail PERCENT%           trailing stop by percent (trail 1.5%)
          mkt|market               explicit market order; takes no price
          day|gtc|ioc|fok|opg|cls  time in force (default day)
          ext                      extended hours (risk decides where Alpaca allows it)
        an algo works the order as a parent over time (market or limit orders only):
          twap DURATION [slices N] equal slices over DURATION (30m, 1h, 1h30m, 90s)
          vwap DURATION | vwap until HH:MM
                                   slices along the intraday volume curve, until a New York time
          pov PERCENT% [min QTY] [max QTY]
                                   a percentage of the traded volume, in clips of min to max
          iceberg QTY              show QTY at the limit price; needs a limit price
        attached exits (a market or limit entry; not with an algo):
          tp PRICE                 take-profit limit; with sl a bracket, alone an OTO
          sl PRICE [sll PRICE]     stop-loss stop (sll: its limit); with tp a bracket
          oco tp PRICE sl PRICE    no entry: an exit pair, one cancels the other
    cancel ID | cancel all
    replace ID [qty QTY] [px|price|lmt|limit|@ PRICE] [stp|stop PRICE]
        at least one change, in any order; px and its synonyms set the limit
        price, stp and stop set the stop price
    flatten SYMBOL | flatten all
    pause ALGO | resume ALGO   an algo's parent order (cancel ALGO cancels it and its children)
    kill
    reset-kill

Numbers: QTY is digits with an optional fraction and optional thousands commas
(``1,000``, ``0.5``); shorthand such as ``1k`` is refused, because a slip of
one letter must not multiply an order by a thousand. PRICE may start with
``$``. Quantities and prices must be above zero; whether a fractional quantity
or an off-grid price is acceptable is for risk to decide.

Symbols: a letter, then up to nine letters, digits, ``.`` or ``/`` (``BRK.B``,
``BTC/USD``), or an OCC option symbol (``AAPL240119C00190000``: root, expiry
YYMMDD, C or P, strike x1000 in 8 digits), whose quantity counts contracts of
100 shares and whose prices are per share. Whether the symbol exists is for
risk to decide. ``all`` is
reserved after ``cancel`` and ``flatten``, so a position in the ticker ALL is
flattened with a sell order rather than ``flatten ALL``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import time
from decimal import Decimal
from typing import TypeAlias

from engine.core.errors import InputError
from engine.core.models import OrderClass, OrderRequest, OrderType, Side, TimeInForce
from engine.execution.spec import AlgoSpec, IcebergSpec, PovSpec, TwapSpec, VwapSpec
from engine.options.occ import format_occ, parse_occ


class OrderSyntaxError(InputError):
    """An order line that does not parse.

    ``token`` is the offending text ("" when something is missing) and
    ``position`` its character offset in the line (for a missing token, the
    offset just past the last token), so the console can underline it.
    """

    def __init__(self, message: str, token: str, position: int) -> None:
        super().__init__(message)
        self.token = token
        self.position = position


@dataclass(slots=True, frozen=True)
class SubmitOrder:
    """Send a new order (``request.source`` is "manual")."""

    request: OrderRequest


@dataclass(slots=True, frozen=True)
class SubmitAlgo:
    """Start an execution algo working ``request`` as a parent order."""

    request: OrderRequest
    spec: AlgoSpec


@dataclass(slots=True, frozen=True)
class PauseAlgo:
    """Pause an algo's parent order; ``parent_ref`` is its id as typed ("algo-3", "3")."""

    parent_ref: str


@dataclass(slots=True, frozen=True)
class ResumeAlgo:
    """Resume a paused algo's parent order."""

    parent_ref: str


@dataclass(slots=True, frozen=True)
class CancelOrder:
    """Cancel one order; ``order_ref`` is the id as typed, resolved by the OMS."""

    order_ref: str


@dataclass(slots=True, frozen=True)
class CancelAll:
    """Cancel every open order."""


@dataclass(slots=True, frozen=True)
class ReplaceOrder:
    """Change a working order; ``None`` fields stay as they are (at least one is set)."""

    order_ref: str
    qty: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None


@dataclass(slots=True, frozen=True)
class Flatten:
    """Close the position in ``symbol``, or every position when ``symbol`` is None."""

    symbol: str | None


@dataclass(slots=True, frozen=True)
class Kill:
    """Engage the kill switch."""


@dataclass(slots=True, frozen=True)
class ResetKill:
    """Release the kill switch."""


Command: TypeAlias = (
    SubmitOrder
    | SubmitAlgo
    | PauseAlgo
    | ResumeAlgo
    | CancelOrder
    | CancelAll
    | ReplaceOrder
    | Flatten
    | Kill
    | ResetKill
)

_VERBS_HELP = "buy, sell, cancel, replace, flatten, pause, resume, kill or reset-kill"
_SIDES = {"b": Side.BUY, "buy": Side.BUY, "s": Side.SELL, "sell": Side.SELL}
_TIFS = {tif.value: tif for tif in TimeInForce}
_MARKET_WORDS = frozenset({"mkt", "market"})
_LIMIT_WORDS = frozenset({"lmt", "limit", "@"})
_STOP_WORDS = frozenset({"stp", "stop"})
_REPLACE_PRICE_WORDS = _LIMIT_WORDS | {"px", "price"}
_REPLACE_WORDS = _REPLACE_PRICE_WORDS | _STOP_WORDS | {"qty"}
_SLOTS = ("qty", "limit", "stop")

# Explicit [0-9] rather than \d: \d also matches other scripts' digits.
_NUMBER = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+"
_QTY_RE = re.compile(_NUMBER)
_PRICE_RE = re.compile(rf"\$?(?:{_NUMBER})")
_PERCENT_RE = re.compile(rf"(?:{_NUMBER})%")
_SYMBOL_RE = re.compile(r"[A-Za-z][A-Za-z0-9./]{0,9}")
# Looks like an OCC symbol (a root, six digits, C or P, digits), so a malformed one is told
# what is wrong with it rather than that it is too long for a stock symbol.
_OCC_LIKE_RE = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,5}[0-9]{6}[CPcp][0-9]+")
_TOKEN_RE = re.compile(r"@|[^\s@]+")
_SHORTHAND_RE = re.compile(r"[0-9.,]+[kKmM]")
_DURATION_RE = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_CLOCK_RE = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_ALGO_WORDS = frozenset({"twap", "vwap", "pov", "iceberg"})
_CLIP_WORDS = frozenset({"min", "max"})
_LEG_WORDS = frozenset({"tp", "sl", "sll"})


@dataclass(slots=True, frozen=True)
class _Token:
    text: str
    pos: int

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    @property
    def word(self) -> str:
        """The token as a keyword: lower-cased ASCII; other text can never be a keyword."""
        return self.text.lower() if self.text.isascii() else self.text


def _error(message: str, token: _Token) -> OrderSyntaxError:
    return OrderSyntaxError(message, token.text, token.pos)


def _missing(message: str, after: _Token) -> OrderSyntaxError:
    return OrderSyntaxError(message, "", after.end)


def parse(line: str) -> Command:
    """Parse one line of the order language; raises ``OrderSyntaxError`` and nothing else."""
    tokens = [_Token(m.group(), m.start()) for m in _TOKEN_RE.finditer(line)]
    if not tokens:
        raise OrderSyntaxError(
            "the order line is empty; type a command such as 'buy 100 AAPL'", "", 0
        )
    verb = tokens[0].word
    if verb in _SIDES:
        return _parse_order(_SIDES[verb], tokens)
    if verb in ("pause", "resume"):
        return _parse_algo_control(tokens)
    if verb == "cancel":
        return _parse_cancel(tokens)
    if verb == "replace":
        return _parse_replace(tokens)
    if verb == "flatten":
        return _parse_flatten(tokens)
    if verb == "kill":
        _expect_end(tokens, 1)
        return Kill()
    if verb == "reset-kill":
        _expect_end(tokens, 1)
        return ResetKill()
    raise _error(f"'{tokens[0].text}' is not an order verb; expected {_VERBS_HELP}", tokens[0])


def parse_algo(text: str) -> AlgoSpec | None:
    """The algo an order line's tail names (``twap 30m``, ``vwap until 15:30``, ``pov 10%``,
    ``iceberg 500``), None for an empty tail; ``InputError`` (one sentence) otherwise. Bots
    take their ``algo`` parameter in this form."""
    if not text.strip():
        return None
    try:
        command = parse(f"buy 1 X {text}")
    except OrderSyntaxError as error:
        raise InputError(f"'{text}' is not an execution algo: {error}") from None
    if not isinstance(command, SubmitAlgo):
        raise InputError(
            f"'{text}' is not an execution algo; write e.g. twap 30m, vwap 1h, pov 10% or "
            "iceberg 500"
        )
    return command.spec


def _expect_end(tokens: list[_Token], index: int) -> None:
    if len(tokens) > index:
        raise _error(
            f"unexpected '{tokens[index].text}' after '{tokens[index - 1].text}'", tokens[index]
        )


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", "").lstrip("$"))


def _quantity(token: _Token) -> Decimal:
    if _QTY_RE.fullmatch(token.text) is None:
        if _SHORTHAND_RE.fullmatch(token.text):
            raise _error(
                f"'{token.text}' is not a quantity; write it out, as in 1000 or 1,000", token
            )
        raise _error(f"'{token.text}' is not a quantity", token)
    qty = _number(token.text)
    if qty <= 0:
        raise _error(f"'{token.text}' is not a quantity; it must be more than zero", token)
    return qty


def _price(token: _Token, keyword: _Token | None) -> Decimal:
    if _PRICE_RE.fullmatch(token.text) is None:
        if keyword is None:
            raise _error(f"'{token.text}' is not a price", token)
        raise _error(f"'{keyword.text}' needs a price after it, got '{token.text}'", token)
    price = _number(token.text)
    if price <= 0:
        raise _error(f"'{token.text}' is not a price; it must be more than zero", token)
    return price


def _symbol(token: _Token) -> str:
    if _OCC_LIKE_RE.fullmatch(token.text) is not None:
        try:
            return format_occ(parse_occ(token.text))
        except InputError as error:
            raise _error(str(error).rstrip("."), token) from None
    if _SYMBOL_RE.fullmatch(token.text) is None:
        raise _error(
            f"'{token.text}' is not a symbol; expected a letter then up to nine letters, "
            "digits, '.' or '/'",
            token,
        )
    return token.text.upper()


def _argument(tokens: list[_Token], index: int, message: str) -> _Token:
    """The token after a keyword, or an error saying what the keyword needs."""
    if index >= len(tokens):
        raise _missing(message, tokens[index - 1])
    return tokens[index]


@dataclass(slots=True)
class _OrderFields:
    """What an order line has said so far, with the token that said it (for error messages)."""

    tif: tuple[TimeInForce, _Token] | None = None
    market: _Token | None = None
    limit: tuple[Decimal, _Token] | None = None
    stop: tuple[Decimal, _Token] | None = None
    trail: tuple[Decimal, bool, _Token] | None = None
    ext: _Token | None = None
    algo: tuple[AlgoSpec, _Token] | None = None
    slices: tuple[int, _Token] | None = None
    clips: dict[str, tuple[Decimal, _Token]] = field(default_factory=dict)
    legs: dict[str, tuple[Decimal, _Token]] = field(default_factory=dict)
    oco: _Token | None = None

    def priced_by(self) -> _Token | None:
        """The token that gave the first price of any kind, if any."""
        given = [s[-1] for s in (self.limit, self.stop, self.trail) if s is not None]
        return min(given, key=lambda t: t.pos) if given else None


def _twice(token: _Token, earlier: _Token, what: str) -> OrderSyntaxError:
    if token.word == earlier.word:
        return _error(f"'{token.text}' given twice", token)
    return _error(f"'{token.text}' gives a second {what}", token)


def _parse_order(side: Side, tokens: list[_Token]) -> SubmitOrder | SubmitAlgo:
    qty = _quantity(_argument(tokens, 1, f"missing quantity after '{tokens[0].text}'"))
    symbol = _symbol(_argument(tokens, 2, "missing symbol after the quantity"))
    said = _OrderFields()
    i = 3
    while i < len(tokens):
        token = tokens[i]
        word = token.word
        i += 1
        if word in _TIFS:
            if said.tif is not None:
                earlier = said.tif[1]
                if earlier.word == word:
                    raise _error(f"'{token.text}' given twice", token)
                raise _error(
                    f"'{token.text}' conflicts with '{earlier.text}'; give one time in force", token
                )
            said.tif = (_TIFS[word], token)
        elif word in _MARKET_WORDS:
            if said.market is not None:
                raise _error(f"'{token.text}' given twice", token)
            priced = said.priced_by()
            if priced is not None:
                raise _error(
                    f"'{token.text}' conflicts with '{priced.text}'; a market order has no price",
                    token,
                )
            said.market = token
        elif word == "ext":
            if said.ext is not None:
                raise _error(f"'{token.text}' given twice", token)
            said.ext = token
        elif word in _LIMIT_WORDS or word in _STOP_WORDS:
            argument = _argument(tokens, i, f"'{token.text}' needs a price after it")
            i += 1
            _check_priceable(said, token, stop=word in _STOP_WORDS)
            value = (_price(argument, token), token)
            if word in _STOP_WORDS:
                said.stop = value
            else:
                said.limit = value
        elif word == "trail":
            argument = _argument(
                tokens, i, "a trailing stop needs an amount or a percent after 'trail'"
            )
            i += 1
            if said.trail is not None:
                raise _error(f"'{token.text}' given twice", token)
            _check_trailable(said, token)
            said.trail = (*_trail_amount(argument), token)
        elif _PRICE_RE.fullmatch(token.text):
            _check_priceable(said, token, stop=False)
            said.limit = (_price(token, None), token)
        elif word in _ALGO_WORDS or word in _CLIP_WORDS or word == "slices":
            i = _parse_algo_word(tokens, i, said)
        elif word in _LEG_WORDS or word == "oco":
            i = _parse_leg_word(tokens, i, said)
        elif token.text[:1] in ("$", ".") or token.text[:1].isdigit():
            raise _error(f"'{token.text}' is not a price", token)
        else:
            raise _error(f"unexpected '{token.text}' after the order", token)
    request = _request(side, qty, symbol, said)
    if said.algo is not None:
        return SubmitAlgo(request, _finish_algo(said, request))
    if said.legs or said.oco is not None:
        return SubmitOrder(_with_legs(request, said, tokens[-1]))
    return SubmitOrder(request)


def _parse_algo_word(tokens: list[_Token], i: int, said: _OrderFields) -> int:
    """One algo keyword and its argument at ``tokens[i - 1]``; the index after them."""
    token = tokens[i - 1]
    word = token.word
    if word in _CLIP_WORDS or word == "slices":
        argument = _argument(tokens, i, f"'{token.text}' needs a quantity after it")
        earlier = said.slices[1] if word == "slices" and said.slices else None
        earlier = earlier or (said.clips[word][1] if word in said.clips else None)
        if earlier is not None:
            raise _error(f"'{token.text}' given twice", token)
        if word == "slices":
            if not argument.text.isdigit() or int(argument.text) < 1:
                raise _error(f"'{argument.text}' is not a number of slices", argument)
            said.slices = (int(argument.text), token)
        else:
            said.clips[word] = (_quantity(argument), token)
        return i + 1
    if said.algo is not None:
        raise _twice(token, said.algo[1], "algo")
    if word == "vwap":
        first = _argument(tokens, i, "'vwap' needs a duration (1h) or 'until HH:MM' after it")
        if first.word == "until":
            clock = _argument(tokens, i + 1, "'until' needs a time such as 15:30 after it")
            said.algo = (VwapSpec(until=_clock_time(clock)), token)
            return i + 2
        said.algo = (VwapSpec(duration_s=_duration(first)), token)
        return i + 1
    if word == "twap":
        argument = _argument(tokens, i, "'twap' needs a duration such as 30m after it")
        said.algo = (TwapSpec(_duration(argument)), token)
    elif word == "pov":
        argument = _argument(tokens, i, "'pov' needs a percentage such as 10% after it")
        said.algo = (PovSpec(_participation(argument)), token)
    else:
        argument = _argument(tokens, i, "'iceberg' needs a display quantity after it")
        said.algo = (IcebergSpec(_quantity(argument)), token)
    return i + 1


def _duration(token: _Token) -> int:
    """Seconds in ``30m``, ``1h``, ``1h30m``, ``90s``."""
    match = _DURATION_RE.fullmatch(token.word)
    if not token.text or match is None:
        raise _error(f"'{token.text}' is not a duration; write it as 30m, 1h, 1h30m or 90s", token)
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise _error(f"'{token.text}' is not a duration; it must be more than zero", token)
    return total


def _clock_time(token: _Token) -> time:
    match = _CLOCK_RE.fullmatch(token.text)
    if match is None:
        raise _error(f"'{token.text}' is not a time of day; write it as 15:30", token)
    return time(int(match.group(1)), int(match.group(2)))


def _participation(token: _Token) -> Decimal:
    if _PERCENT_RE.fullmatch(token.text) is None:
        raise _error(f"'pov' needs a percentage such as 10%, got '{token.text}'", token)
    rate = _number(token.text[:-1])
    if not 0 < rate <= 100:
        raise _error(
            f"'{token.text}' is not a participation; it must be above 0% and at most 100%", token
        )
    return rate


def _finish_algo(said: _OrderFields, request: OrderRequest) -> AlgoSpec:
    """The algo's spec with its options, after checking the order it works can be sliced."""
    spec, token = said.algo
    for other in (said.stop, said.trail):
        if other is not None:
            raise _error(
                f"'{other[-1].text}' conflicts with '{token.text}'; an algo works a market or "
                "limit order",
                other[-1],
            )
    if said.legs or said.oco is not None:
        leg = said.oco or min((t for _, t in said.legs.values()), key=lambda t: t.pos)
        raise _error(
            f"'{leg.text}' conflicts with '{token.text}'; take-profit and stop-loss legs go on "
            "single orders",
            leg,
        )
    if said.slices is not None and not isinstance(spec, TwapSpec):
        raise _error(f"'{said.slices[1].text}' only goes with twap", said.slices[1])
    if said.clips and not isinstance(spec, PovSpec):
        clip = min((t for _, t in said.clips.values()), key=lambda t: t.pos)
        raise _error(f"'{clip.text}' only goes with pov", clip)
    if isinstance(spec, TwapSpec) and said.slices is not None:
        return TwapSpec(spec.duration_s, said.slices[0])
    if isinstance(spec, PovSpec) and said.clips:
        low = said.clips.get("min")
        high = said.clips.get("max")
        if low is not None and high is not None and high[0] < low[0]:
            raise _error(f"'{high[1].text}' clip is below the min clip", high[1])
        return PovSpec(spec.rate_pct, low and low[0], high and high[0])
    if isinstance(spec, IcebergSpec) and request.limit_price is None:
        raise _error(f"'{token.text}' needs a limit price; add lmt PRICE", token)
    return spec


def _parse_leg_word(tokens: list[_Token], i: int, said: _OrderFields) -> int:
    token = tokens[i - 1]
    word = token.word
    if word == "oco":
        if said.oco is not None:
            raise _error(f"'{token.text}' given twice", token)
        said.oco = token
        return i
    names = {"tp": "take-profit price", "sl": "stop-loss price", "sll": "stop-loss limit price"}
    argument = _argument(tokens, i, f"'{token.text}' needs a {names[word]} after it")
    if word in said.legs:
        raise _error(f"'{token.text}' given twice", token)
    said.legs[word] = (_price(argument, token), token)
    return i + 1


def _with_legs(request: OrderRequest, said: _OrderFields, last: _Token) -> OrderRequest:
    """``request`` with its take-profit and stop-loss legs: a bracket, an OTO or an OCO."""
    legs = said.legs
    take, stop, stop_limit = (legs.get(name) for name in ("tp", "sl", "sll"))
    first = said.oco or min((t for _, t in legs.values()), key=lambda t: t.pos)
    if stop_limit is not None and stop is None:
        raise _error(f"'{stop_limit[1].text}' needs 'sl PRICE' before it", stop_limit[1])
    if said.oco is not None:
        if take is None or stop is None:
            raise _missing("'oco' needs both 'tp PRICE' and 'sl PRICE'", last)
        priced = said.priced_by() or said.market
        if priced is not None:
            raise _error(
                f"'{priced.text}' conflicts with 'oco'; an OCO's prices are its tp and sl", priced
            )
    elif request.type not in (OrderType.MARKET, OrderType.LIMIT):
        raise _error(
            f"'{first.text}' needs a market or limit entry order, not a {request.type.value}",
            first,
        )
    if take is not None and stop is not None:
        # The legs close the position: a long's take-profit is above its stop, a short's below.
        long_exit = (request.side if said.oco is not None else request.side.opposite) is Side.SELL
        if (take[0] <= stop[0]) if long_exit else (take[0] >= stop[0]):
            where = "above" if long_exit else "below"
            raise _error(
                f"the take-profit {_plain(take[0])} must be {where} the stop-loss "
                f"{_plain(stop[0])}",
                take[1],
            )
    if said.oco is not None:
        order_class = OrderClass.OCO
    elif take is not None and stop is not None:
        order_class = OrderClass.BRACKET
    else:
        order_class = OrderClass.OTO
    return replace(
        request,
        type=OrderType.LIMIT if said.oco is not None else request.type,
        limit_price=take[0] if said.oco is not None else request.limit_price,
        order_class=order_class,
        take_profit_price=take and take[0],
        stop_loss_price=stop and stop[0],
        stop_loss_limit_price=stop_limit and stop_limit[0],
    )


def _parse_algo_control(tokens: list[_Token]) -> PauseAlgo | ResumeAlgo:
    ref = _argument(tokens, 1, f"'{tokens[0].text}' needs an algo id after it")
    _expect_end(tokens, 2)
    return PauseAlgo(ref.text) if tokens[0].word == "pause" else ResumeAlgo(ref.text)


def _check_priceable(said: _OrderFields, token: _Token, *, stop: bool) -> None:
    """A limit or stop price may not repeat, nor join a market order or a trailing stop."""
    earlier = said.stop if stop else said.limit
    if earlier is not None:
        raise _twice(token, earlier[1], "stop price" if stop else "limit price")
    if said.market is not None:
        raise _error(
            f"'{token.text}' conflicts with '{said.market.text}'; a market order has no price",
            token,
        )
    if said.trail is not None:
        raise _error(
            f"'{token.text}' conflicts with '{said.trail[2].text}'; "
            "a trailing stop takes no limit or stop price",
            token,
        )


def _check_trailable(said: _OrderFields, token: _Token) -> None:
    if said.market is not None:
        raise _error(
            f"'{token.text}' conflicts with '{said.market.text}'; a market order has no price",
            token,
        )
    priced = said.priced_by()
    if priced is not None:
        raise _error(
            f"'{token.text}' conflicts with '{priced.text}'; "
            "a trailing stop takes no limit or stop price",
            token,
        )


def _trail_amount(token: _Token) -> tuple[Decimal, bool]:
    """The trail as (value, is_percent)."""
    if _PERCENT_RE.fullmatch(token.text):
        value, percent = _number(token.text[:-1]), True
    elif _PRICE_RE.fullmatch(token.text):
        value, percent = _number(token.text), False
    else:
        raise _error(
            f"a trailing stop needs an amount or a percent after 'trail', got '{token.text}'",
            token,
        )
    if value <= 0:
        raise _error(f"'{token.text}' is not a trail; it must be more than zero", token)
    return value, percent


def _request(side: Side, qty: Decimal, symbol: str, said: _OrderFields) -> OrderRequest:
    limit = said.limit[0] if said.limit else None
    stop = said.stop[0] if said.stop else None
    trail_price = trail_percent = None
    if said.trail is not None:
        order_type = OrderType.TRAILING_STOP
        value, percent, _ = said.trail
        if percent:
            trail_percent = value
        else:
            trail_price = value
    elif stop is not None:
        order_type = OrderType.STOP if limit is None else OrderType.STOP_LIMIT
    elif limit is not None:
        order_type = OrderType.LIMIT
    else:
        order_type = OrderType.MARKET
    return OrderRequest(
        symbol=symbol,
        side=side,
        qty=qty,
        type=order_type,
        tif=said.tif[0] if said.tif else TimeInForce.DAY,
        limit_price=limit,
        stop_price=stop,
        trail_price=trail_price,
        trail_percent=trail_percent,
        extended_hours=said.ext is not None,
        source="manual",
    )


def _order_ref(tokens: list[_Token], needs: str) -> _Token:
    """The order id after ``cancel`` or ``replace``, which must not be a keyword of the line."""
    ref = _argument(tokens, 1, f"'{tokens[0].text}' needs {needs} after it")
    if ref.text == "@" or ref.word in _REPLACE_WORDS:
        raise _error(f"'{tokens[0].text}' needs an order id before '{ref.text}'", ref)
    return ref


def _parse_cancel(tokens: list[_Token]) -> Command:
    ref = _order_ref(tokens, "an order id or 'all'")
    _expect_end(tokens, 2)
    if ref.word == "all":
        return CancelAll()
    return CancelOrder(ref.text)


def _parse_replace(tokens: list[_Token]) -> ReplaceOrder:
    ref = _order_ref(tokens, "an order id")
    changes: dict[str, tuple[Decimal, _Token]] = {}
    i = 2
    while i < len(tokens):
        token = tokens[i]
        word = token.word
        i += 1
        if word == "qty":
            slot, what = "qty", "quantity"
        elif word in _REPLACE_PRICE_WORDS:
            slot, what = "limit", "limit price"
        elif word in _STOP_WORDS:
            slot, what = "stop", "stop price"
        else:
            raise _error(f"unexpected '{token.text}' in a replace; expected qty, px or stp", token)
        if slot in changes:
            raise _twice(token, changes[slot][1], what)
        argument = _argument(tokens, i, f"'{token.text}' needs a {what} after it")
        i += 1
        value = _quantity(argument) if slot == "qty" else _price(argument, token)
        changes[slot] = (value, token)
    if not changes:
        raise _missing(f"'{tokens[0].text}' needs something to change: qty, px or stp", tokens[-1])
    qty, limit, stop = (changes[slot][0] if slot in changes else None for slot in _SLOTS)
    return ReplaceOrder(ref.text, qty, limit, stop)


def _parse_flatten(tokens: list[_Token]) -> Flatten:
    target = _argument(tokens, 1, f"'{tokens[0].text}' needs a symbol or 'all' after it")
    _expect_end(tokens, 2)
    if target.word == "all":
        return Flatten(None)
    return Flatten(_symbol(target))


def _plain(number: Decimal) -> str:
    """Fixed-point text without trailing zeros: 100, 0.5, 1.25."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _money(price: Decimal) -> str:
    """Fixed-point text with at least two decimals: 187.50, 0.1234, 400.00."""
    text = format(price, "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _required(value: Decimal | None, request: OrderRequest, what: str) -> Decimal:
    if value is None:
        raise ValueError(f"a {request.type.value} order for {request.symbol} has no {what}")
    return value


def format_request(request: OrderRequest) -> str:
    """The canonical order line for ``request``, e.g. ``buy 100 AAPL lmt 187.50 gtc``.

    ``parse`` of the result gives back an equal request, except for
    ``client_order_id``, ``source`` and ``parent_id``, which the language does not
    express (a parsed line is always "manual"). Time in force is omitted when it
    is the default, day. A request that lacks the price its type needs raises
    ``ValueError``.
    """
    parts = [request.side.value, _plain(request.qty), request.symbol]
    if request.order_class is OrderClass.OCO:
        # An OCO's limit is its take-profit: the legs say everything.
        return " ".join([*parts, "oco", *_legs_text(request), *_tail_text(request)])
    match request.type:
        case OrderType.LIMIT:
            parts += ["lmt", _money(_required(request.limit_price, request, "limit price"))]
        case OrderType.STOP:
            parts += ["stp", _money(_required(request.stop_price, request, "stop price"))]
        case OrderType.STOP_LIMIT:
            parts += ["stp", _money(_required(request.stop_price, request, "stop price"))]
            parts += ["lmt", _money(_required(request.limit_price, request, "limit price"))]
        case OrderType.TRAILING_STOP:
            if request.trail_percent is not None:
                parts += ["trail", f"{_plain(request.trail_percent)}%"]
            else:
                parts += ["trail", _money(_required(request.trail_price, request, "trail"))]
    return " ".join([*parts, *_legs_text(request), *_tail_text(request)])


def _legs_text(request: OrderRequest) -> list[str]:
    parts = []
    if request.take_profit_price is not None:
        parts += ["tp", _money(request.take_profit_price)]
    if request.stop_loss_price is not None:
        parts += ["sl", _money(request.stop_loss_price)]
    if request.stop_loss_limit_price is not None:
        parts += ["sll", _money(request.stop_loss_limit_price)]
    return parts


def _tail_text(request: OrderRequest) -> list[str]:
    parts = []
    if request.tif is not TimeInForce.DAY:
        parts.append(request.tif.value)
    if request.extended_hours:
        parts.append("ext")
    return parts


def _duration_text(seconds: int) -> str:
    """``5400`` -> ``1h30m``; the form ``_duration`` reads."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


def format_algo(request: OrderRequest, spec: AlgoSpec) -> str:
    """The canonical line for an algo order, e.g. ``buy 5000 AAPL twap 30m``.

    ``parse`` of the result gives back ``SubmitAlgo(request, spec)`` (request as in
    ``format_request``).
    """
    words = format_request(request).split(" ")
    head, tail = words[:3], words[3:]
    match spec:
        case TwapSpec(duration_s=duration, slices=slices):
            algo = ["twap", _duration_text(duration)]
            if slices is not None:
                algo += ["slices", str(slices)]
        case VwapSpec(until=until) if until is not None:
            algo = ["vwap", "until", until.strftime("%H:%M")]
        case VwapSpec(duration_s=duration):
            algo = ["vwap", _duration_text(duration or 0)]
        case PovSpec(rate_pct=rate, min_clip=low, max_clip=high):
            algo = ["pov", f"{_plain(rate)}%"]
            if low is not None:
                algo += ["min", _plain(low)]
            if high is not None:
                algo += ["max", _plain(high)]
        case IcebergSpec(display_qty=display):
            algo = ["iceberg", _plain(display)]
    return " ".join([*head, *algo, *tail])


def complete_symbol(prefix: str, symbols: Iterable[str]) -> list[str]:
    """The symbols starting with ``prefix`` (case-insensitive), upper-cased, sorted, no repeats."""
    wanted = prefix.strip().upper()
    return sorted({s.upper() for s in symbols if s.upper().startswith(wanted)})
