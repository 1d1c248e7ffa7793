"""Bots: strategies that propose or place trades inside their own risk budget.

``api`` is what a bot sees (``Bot``, ``BotContext``, ``Opportunity``); ``service``
runs bots inside the engine; ``offline`` runs one over a list of bars. The
built-in bots are loaded by kind on first use (``bot_class``), so an engine that
runs no ML bot never imports scikit-learn.
"""

from __future__ import annotations

from importlib import import_module

from engine.bots.api import Bot, BotError
from engine.bots.settings import BOT_KINDS

_BUILT_IN = {
    "momentum": ("engine.bots.momentum", "MomentumBot"),
    "mean_reversion": ("engine.bots.mean_reversion", "MeanReversionBot"),
    "breakout": ("engine.bots.breakout", "BreakoutBot"),
    "pairs": ("engine.bots.pairs", "PairsBot"),
    "ml": ("engine.bots.ml", "MLBot"),
    "options": ("engine.bots.options", "PremiumBot"),
}
assert tuple(_BUILT_IN) == BOT_KINDS


def bot_class(kind: str) -> type[Bot]:
    """The built-in bot of ``kind``; ``BotError`` for an unknown kind."""
    where = _BUILT_IN.get(kind)
    if where is None:
        raise BotError(f"'{kind}' is not a bot; the bots are {', '.join(BOT_KINDS)}.")
    module, name = where
    return getattr(import_module(module), name)
