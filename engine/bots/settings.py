"""The ``[bots]`` settings section and the text form of a bot on the command line.

A bot spec is ``kind[:mode][:key=value,key=value...]``: ``momentum``,
``pairs:advise:symbols=KO+PEP``, ``momentum:auto:fast=5,slow=20``. The mode is
``off``, ``advise`` (the default) or ``auto``; list values such as symbols are
joined with ``+``. A name other than the kind is given in front with ``=``
(``fast=momentum:auto:fast=5``), so two bots of one kind can run side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from engine.core.errors import InputError

BOT_KINDS = ("momentum", "mean_reversion", "breakout", "pairs", "ml", "options")
"""The built-in bots, by the kind their specs name."""

_MODES = ("off", "advise", "auto")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_BUDGET_KEYS = ("max_notional", "max_positions", "max_daily_loss")


class OnError(StrEnum):
    """What happens to an errored bot's working orders."""

    CANCEL = "cancel"
    KEEP = "keep"


@dataclass(slots=True, frozen=True)
class BotSpec:
    """One bot to run: its name, kind, mode and parameters as text."""

    name: str
    kind: str
    mode: str = "advise"
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        text = self.kind if self.name == self.kind else f"{self.name}={self.kind}"
        text += f":{self.mode}"
        if self.params:
            text += ":" + ",".join(f"{k}={v}" for k, v in self.params)
        return text


def parse_spec(text: str) -> BotSpec:
    """One spec, or an ``InputError`` saying what is wrong with it."""
    spec = text.strip()
    name = None
    head, colon, rest = spec.partition(":")
    if "=" in head:
        name, _, head = head.partition("=")
        name = name.strip().lower()
    kind = head.strip().lower()
    if kind not in BOT_KINDS:
        raise InputError(f"'{kind}' is not a bot; the bots are {', '.join(BOT_KINDS)}.")
    if name is not None and not _NAME.fullmatch(name):
        raise InputError(
            f"'{name}' is not a bot name (a letter, then up to 31 letters, digits, - or _)."
        )
    mode = "advise"
    params_text = ""
    if colon:
        first, _, params_text = rest.partition(":")
        if "=" in first:
            params_text = rest
        elif first.strip():
            mode = first.strip().lower()
    if mode not in _MODES:
        raise InputError(f"'{mode}' is not a bot mode; use off, advise or auto.")
    params: list[tuple[str, str]] = []
    for part in (p.strip() for p in re.split(r"[,;]", params_text)):
        if not part:
            continue
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise InputError(f"bot parameter '{part}' must be written key=value.")
        params.append((key.strip().lower(), value.strip()))
    return BotSpec(name or kind, kind, mode, tuple(params))


def parse_specs(items: Iterable[str]) -> list[BotSpec]:
    """Specs from a list; an item that is only ``key=value`` continues the one before it.

    (Settings split lists on commas, so ``momentum:auto:fast=5,slow=20`` from the
    environment arrives as two items.)
    """
    texts: list[str] = []
    for item in items:
        if texts and ":" not in item and "=" in item and item.split("=")[0] not in BOT_KINDS:
            texts[-1] += ("," if texts[-1].count(":") >= 2 else ":") + item
        else:
            texts.append(item)
    specs = [parse_spec(text) for text in texts]
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"two bots are named '{name}'; name one with name=kind:...")
    return specs


def parse_budget(text: str) -> dict[str, Decimal | None]:
    """``max_notional=5000,max_positions=2`` as a mapping; ``none`` turns a limit off."""
    budget: dict[str, Decimal | None] = {}
    for part in (p.strip() for p in re.split(r"[,;]", text)):
        if not part:
            continue
        key, equals, value = part.partition("=")
        key = key.strip()
        if not equals or key not in _BUDGET_KEYS:
            raise InputError(
                f"budget entry '{part}' must be one of {', '.join(_BUDGET_KEYS)} = a number."
            )
        value = value.strip()
        if value.lower() in ("", "none"):
            budget[key] = None
            continue
        try:
            amount = Decimal(value)
        except ArithmeticError:
            amount = Decimal(-1)
        if not amount.is_finite() or amount < 0:
            raise InputError(f"budget {key} must be a number, zero or more, not '{value}'.")
        budget[key] = amount
    return budget


@dataclass(slots=True, frozen=True)
class BotSettings:
    """Bots to run and their default risk budget (on top of the global risk limits).

    ``run`` lists bot specs (see ``parse_spec``). Each bot may hold at most
    ``max_notional`` dollars of positions and working orders, positions in at most
    ``max_positions`` symbols, and stops opening trades once it has lost
    ``max_daily_loss`` today; ``none`` turns a limit off. ``budgets`` overrides them
    per bot name (``momentum = "max_notional=5000,max_positions=2"``). ``on_error``
    says whether a bot that raised has its working orders cancelled or kept.
    """

    run: list[str] = field(default_factory=list)
    max_notional: Decimal | None = Decimal(25_000)
    max_positions: int | None = 5
    max_daily_loss: Decimal | None = Decimal(1_000)
    on_error: OnError = OnError.CANCEL
    budgets: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            parse_specs(self.run)
            for name, text in self.budgets.items():
                parse_budget(text)
                if not _NAME.fullmatch(name):
                    raise InputError(f"budgets names '{name}', which is not a bot name.")
        except InputError as error:
            raise ValueError(str(error).rstrip(".")) from None
        for key in _BUDGET_KEYS:
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ValueError(f"{key} must be zero or more, got {value}")
