"""Order-language scripts for headless runs (``tickdeck engine --orders FILE|-``).

Lines are submitted in order, each once quotes for its symbol exist and the
previous order has been acknowledged or rejected, so a script behaves the same
at any replay speed. Blank lines are skipped; lines starting with ``#`` are
narration, logged as they are reached (the ``--demo`` tour uses them). A line
may price itself off the live quote with ``{SYMBOL.bid}``, ``{SYMBOL.ask}`` or
``{SYMBOL.mid}`` (``sell 100 AAPL lmt {AAPL.bid}``), filled in when the line
runs. A bad line is reported with its number and one sentence, and changes
nothing.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from loguru import logger

from engine.core.conflate import MarketView
from engine.core.errors import InputError
from engine.core.models import OrderStatus
from engine.core.prices import round_to_tick
from engine.oms import OrderManager, SubmitResult
from engine.orders.language import (
    CancelAll,
    CancelOrder,
    Flatten,
    Kill,
    PauseAlgo,
    ReplaceOrder,
    ResetKill,
    ResumeAlgo,
    SubmitAlgo,
    SubmitOrder,
    parse,
)

if TYPE_CHECKING:
    from engine.execution import ExecutionService, ParentResult


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"
    DONE = "done"


@dataclass(slots=True, frozen=True)
class LineResult:
    number: int
    line: str
    outcome: Outcome
    message: str
    order_id: str | None = None


_AWAITING_ACK = frozenset({OrderStatus.PENDING_NEW})
_QUOTE_FIELD = re.compile(r"\{([A-Za-z][A-Za-z0-9./]{0,9})\.(bid|ask|mid)\}")


class OrderScript:
    """Feeds order lines to the OMS at deterministic points (called after every market event)."""

    def __init__(
        self,
        oms: OrderManager,
        market: MarketView,
        lines: list[str] | None = None,
        *,
        execution: ExecutionService | None = None,
    ) -> None:
        """``execution`` runs algo lines (``twap``, ``pause``, ...); without it they are refused."""
        self._oms = oms
        self._execution = execution
        self._market = market
        self._queue: deque[tuple[int, str]] = deque()
        self._numbered = 0
        self._closed = False
        self._awaiting: str | None = None
        self.results: list[LineResult] = []
        for line in lines or ():
            self.feed(line)
        if lines is not None:
            self.close()

    def feed(self, line: str) -> None:
        self._numbered += 1
        self._queue.append((self._numbered, line.rstrip("\n")))

    def close(self) -> None:
        """No more lines will come (end of file or stdin)."""
        self._closed = True

    @property
    def done(self) -> bool:
        return self._closed and not self._queue and self._awaiting is None

    def pump(self) -> None:
        """Run as many lines as are ready now."""
        if self._awaiting is not None:
            order = self._oms.order(self._awaiting)
            if order is not None and order.status in _AWAITING_ACK:
                return
            self._awaiting = None
        while self._queue:
            number, line = self._queue[0]
            text = line.strip()
            if not text:
                self._queue.popleft()
                continue
            if text.startswith("#"):
                self._queue.popleft()
                logger.info("» {}", text.lstrip("# "))
                continue
            if "{" in text:
                filled = self._fill_quote_fields(text)
                if filled is None:
                    return  # wait for a quote of the symbol it names
                text = filled
            try:
                command = parse(text)
            except InputError as error:
                self._queue.popleft()
                self._record(number, text, Outcome.ERROR, str(error))
                continue
            if (
                isinstance(command, SubmitOrder | SubmitAlgo)
                and self._market.quote(command.request.symbol) is None
            ):
                return  # wait for the first quote of this symbol
            self._queue.popleft()
            if self._execute(number, text, command):
                return

    def _fill_quote_fields(self, text: str) -> str | None:
        """Replace ``{SYM.bid|ask|mid}`` with the live price; None while a named symbol has no quote."""
        missing = False

        def price(match: re.Match[str]) -> str:
            nonlocal missing
            quote = self._market.quote(match.group(1).upper())
            if quote is None or not quote.is_two_sided:
                missing = True
                return match.group(0)
            value = {"bid": quote.bid, "ask": quote.ask, "mid": round_to_tick(quote.mid)}[
                match.group(2)
            ]
            return str(value)

        filled = _QUOTE_FIELD.sub(price, text)
        return None if missing else filled

    def _execute(self, number: int, text: str, command: object) -> bool:
        """Run one command; True when the script must wait for its acknowledgement."""
        oms = self._oms
        match command:
            case SubmitOrder(request=request):
                return self._order_result(number, text, oms.submit(request), "accepted as")
            case CancelOrder(order_ref=ref) if not self._is_algo(ref):
                self._command_result(number, text, oms.cancel(ref))
            case CancelAll():
                self._command_result(number, text, oms.cancel_all())
            case ReplaceOrder(order_ref=ref, qty=qty, limit_price=limit, stop_price=stop):
                result = oms.replace(ref, qty=qty, limit_price=limit, stop_price=stop)
                return self._order_result(number, text, result, "replacement")
            case Flatten(symbol=symbol):
                results = oms.flatten(symbol)
                ok = all(r.accepted for r in results)
                message = f"{len(results)} closing order(s)" if results else "nothing to flatten"
                if not ok:
                    message = "; ".join(r.message for r in results if not r.accepted)
                self._record(number, text, Outcome.DONE if ok else Outcome.REJECTED, message)
            case SubmitAlgo() | PauseAlgo() | ResumeAlgo():
                self._algo_result(number, text, command)
            case CancelOrder():
                self._algo_result(number, text, command)
            case Kill():
                oms.kill()
                self._record(number, text, Outcome.DONE, "kill switch engaged")
            case ResetKill():
                oms.reset_kill()
                self._record(number, text, Outcome.DONE, "kill switch reset")
        return False

    @staticmethod
    def _is_algo(ref: str) -> bool:
        """An algo parent's id ("algo-3"), which ``cancel`` hands to the execution service."""
        return ref.lower().startswith("algo-")

    def _algo_result(self, number: int, text: str, command: object) -> None:
        execution = self._execution
        if execution is None:
            self._record(number, text, Outcome.REJECTED, "algos are not available in this run")
            return
        result: ParentResult
        match command:
            case SubmitAlgo(request=request, spec=spec):
                result = execution.submit(request, spec)
            case PauseAlgo(parent_ref=ref):
                result = execution.pause(ref)
            case ResumeAlgo(parent_ref=ref):
                result = execution.resume(ref)
            case CancelOrder(order_ref=ref):
                result = execution.cancel(ref)
        outcome = Outcome.DONE if result.accepted else Outcome.REJECTED
        parent_id = result.parent.id if result.parent is not None else None
        self._record(number, text, outcome, result.message, parent_id)

    def _order_result(self, number: int, text: str, result: SubmitResult, sent_as: str) -> bool:
        """Record a submit or replace; True when its order went out and the script waits for it."""
        if result.accepted and result.order is not None:
            order_id = result.order.id
            self._record(number, text, Outcome.ACCEPTED, f"{sent_as} {order_id}", order_id)
            self._awaiting = order_id
            return True
        self._record(number, text, Outcome.REJECTED, result.message)
        return False

    def _command_result(self, number: int, text: str, result) -> None:
        self._record(
            number, text, Outcome.DONE if result.accepted else Outcome.REJECTED, result.message
        )

    def _record(
        self, number: int, text: str, outcome: Outcome, message: str, order_id: str | None = None
    ) -> None:
        self.results.append(LineResult(number, text, outcome, message, order_id))
        if outcome is Outcome.ERROR:
            logger.warning("line {}: {}", number, message)
        elif outcome is Outcome.REJECTED:
            logger.warning("line {} rejected: {}", number, message)
        else:
            logger.info("line {}: {} — {}", number, text, message)
