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
    cancel ID | cancel all
    replace ID [qty QTY] [px|price|lmt|limit|@ PRICE] [stp|stop PRICE]
        at least one change, in any order; px and its synonyms set the limit
        price, stp and stop set the stop price
    flatten SYMBOL | flatten all
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
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from engine.core.errors import InputError
from engine.core.models import OrderRequest, OrderType, Side, TimeInForce
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
    SubmitOrder | CancelOrder | CancelAll | ReplaceOrder | Flatten | Kill | ResetKill
)

_VERBS_HELP = "buy, sell, cancel, replace, flatten, kill or reset-kill"
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
        return SubmitOrder(_parse_order(_SIDES[verb], tokens))
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

    def priced_by(self) -> _Token | None:
        """The token that gave the first price of any kind, if any."""
        given = [s[-1] for s in (self.limit, self.stop, self.trail) if s is not None]
        return min(given, key=lambda t: t.pos) if given else None


def _twice(token: _Token, earlier: _Token, what: str) -> OrderSyntaxError:
    if token.word == earlier.word:
        return _error(f"'{token.text}' given twice", token)
    return _error(f"'{token.text}' gives a second {what}", token)


def _parse_order(side: Side, tokens: list[_Token]) -> OrderRequest:
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
        elif token.text[:1] in ("$", ".") or token.text[:1].isdigit():
            raise _error(f"'{token.text}' is not a price", token)
        else:
            raise _error(f"unexpected '{token.text}' after the order", token)
    return _request(side, qty, symbol, said)


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
    if request.tif is not TimeInForce.DAY:
        parts.append(request.tif.value)
    if request.extended_hours:
        parts.append("ext")
    return " ".join(parts)


def complete_symbol(prefix: str, symbols: Iterable[str]) -> list[str]:
    """The symbols starting with ``prefix`` (case-insensitive), upper-cased, sorted, no repeats."""
    wanted = prefix.strip().upper()
    return sorted({s.upper() for s in symbols if s.upper().startswith(wanted)})
