"""Orders as people type them: the order language shared by the console and headless scripts."""

from engine.orders.language import (
    CancelAll,
    CancelOrder,
    Command,
    Flatten,
    Kill,
    OrderSyntaxError,
    PauseAlgo,
    ReplaceOrder,
    ResetKill,
    ResumeAlgo,
    SubmitAlgo,
    SubmitOrder,
    complete_symbol,
    format_algo,
    format_request,
    parse,
)

__all__ = [
    "CancelAll",
    "CancelOrder",
    "Command",
    "Flatten",
    "Kill",
    "OrderSyntaxError",
    "PauseAlgo",
    "ReplaceOrder",
    "ResetKill",
    "ResumeAlgo",
    "SubmitAlgo",
    "SubmitOrder",
    "complete_symbol",
    "format_algo",
    "format_request",
    "parse",
]
