"""Settings: defaults < TOML file < environment < CLI flags, each value typed and traced.

The file is ``config.toml`` in platformdirs' user config dir for "tickdeck"
(``TICKDECK_CONFIG`` or the ``config_path`` argument names another one). Top-level
settings are plain keys; sections are tables::

    mode = "paper"
    symbols = ["AAPL", "MSFT"]

    [risk]
    max_order_qty = 500
    daily_loss_limit = "none"   # turn the check off

The environment uses ``TICKDECK_<KEY>`` for top-level settings and
``TICKDECK_<SECTION>__<KEY>`` for sections (``TICKDECK_RISK__MAX_ORDER_QTY=500``),
plus Alpaca's conventional names (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``,
``APCA_API_BASE_URL``, ``APCA_API_DATA_URL``, ``APCA_API_STREAM_URL``); a ``TICKDECK_ALPACA__*`` variable
beats its ``APCA_*`` twin. CLI flags arrive as a mapping of dotted keys
(``"risk.max_order_qty"``, ``"seed"``) where ``None`` means "not given".

Values are converted from each field's type hint: numbers for money stay exact
``Decimal`` (TOML floats are read as ``Decimal``), booleans accept
true/false/1/0/yes/no/on/off, lists accept a comma- or space-separated string,
tables (the console keymap) accept ``name=value`` pairs separated by ``;``,
and an optional setting is turned off by ``"none"`` or ``""`` (or TOML ``false``
for an optional number). Any unknown key in the file or in the ``TICKDECK_``
namespace is an error, so a typo never silently does nothing; names other
subsystems own are listed in ``RESERVED_ENV`` and ``RESERVED_ENV_PREFIXES``.
Every problem is one ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import TypeVar, Union, get_args, get_origin, get_type_hints

import platformdirs
from loguru import logger

from engine.bots.settings import BotSettings
from engine.core.errors import ConfigError
from engine.core.prices import to_decimal
from engine.data.store.settings import StoreSettings
from engine.execution.config import ExecutionConfig
from engine.risk.config import RiskConfig

APP_NAME = "tickdeck"

RESERVED_ENV = frozenset({"TICKDECK_SAMPLE_DATA", "TICKDECK_CONFIG", "TICKDECK_GPU"})
"""``TICKDECK_`` variables that belong to other subsystems, not to settings."""

RESERVED_ENV_PREFIXES = ("TICKDECK_S3_",)
"""Prefixes of ``TICKDECK_`` variables that belong to other subsystems (the S3 store)."""

ALPACA_ENV = {
    "APCA_API_KEY_ID": "alpaca.key_id",
    "APCA_API_SECRET_KEY": "alpaca.secret_key",
    "APCA_API_BASE_URL": "alpaca.base_url",
    "APCA_API_DATA_URL": "alpaca.data_url",
    "APCA_API_STREAM_URL": "alpaca.stream_url",
}
"""Alpaca's conventional environment names and the settings they fill."""

S3_ENV = {
    "TICKDECK_S3_ENDPOINT": "s3.endpoint",
    "TICKDECK_S3_BUCKET": "s3.bucket",
    "TICKDECK_S3_ACCESS_KEY": "s3.access_key",
    "TICKDECK_S3_SECRET_KEY": "s3.secret_key",
    "TICKDECK_S3_SECURE": "s3.secure",
}
"""The history store's environment names (MinIO-style) and the settings they fill; a
``TICKDECK_S3__*`` variable beats its twin here."""

ALPACA_PAPER_URL = "https://paper-api.alpaca.markets"
ALPACA_LIVE_URL = "https://api.alpaca.markets"

MIN_REFRESH_HZ = 10
MAX_REFRESH_HZ = 30
"""The console pulls engine snapshots this many times a second, at least and at most."""

_T = TypeVar("_T")
_ENV_PREFIX = "TICKDECK_"
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_NONE_WORDS = frozenset({"", "none"})
_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
_FEEDS = ("iex", "sip", "delayed_sip", "boats", "overnight", "test")
_SECRET = "secret"
_SHOW_ENDS = "ends"  # mask all but the first and last two characters (a key id)
_SHOW_NOTHING = "nothing"  # mask everything (a secret key)


class Mode(StrEnum):
    """Where market data comes from and where orders go."""

    SIM = "sim"
    REPLAY = "replay"
    PAPER = "paper"
    LIVE = "live"


class Source(StrEnum):
    """The layer a setting's value came from."""

    DEFAULT = "default"
    FILE = "file"
    ENV = "env"
    CLI = "cli"


@dataclass(slots=True, frozen=True)
class Origin:
    """Where one value came from; ``name`` is the file, variable or CLI key ("" for defaults)."""

    source: Source
    name: str = ""


_DEFAULT_ORIGIN = Origin(Source.DEFAULT)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(slots=True, frozen=True)
class SimSettings:
    """The synthetic market: which day it simulates and how busy it is."""

    start: str | None = None  # ISO date or datetime of the simulated session; None: today
    rate_scale: float = 1.0  # multiplies the calibrated tick rate

    def __post_init__(self) -> None:
        if self.start is not None:
            try:
                datetime.fromisoformat(self.start)
            except ValueError:
                raise ValueError(
                    f"start must be an ISO date or datetime, got '{self.start}'"
                ) from None
        _check(self.rate_scale > 0, f"rate_scale must be more than zero, got {self.rate_scale}")


@dataclass(slots=True, frozen=True)
class VenueSettings:
    """The in-process sim venue: latency, fees, how far market orders walk, the paper account."""

    latency_ms: float = 5.0
    fee_per_share: Decimal = Decimal(0)
    fee_per_order: Decimal = Decimal(0)
    walk_ticks: int = 1  # how many ticks past the touch a market order may fill
    starting_cash: Decimal = Decimal(100_000)
    multiplier: Decimal = Decimal(2)  # buying power / equity, as Alpaca reports it (1, 2 or 4)

    def __post_init__(self) -> None:
        _check(self.latency_ms >= 0, f"latency_ms must be zero or more, got {self.latency_ms}")
        _check(
            self.fee_per_share >= 0, f"fee_per_share must be zero or more, got {self.fee_per_share}"
        )
        _check(
            self.fee_per_order >= 0, f"fee_per_order must be zero or more, got {self.fee_per_order}"
        )
        _check(self.walk_ticks >= 0, f"walk_ticks must be zero or more, got {self.walk_ticks}")
        _check(
            self.starting_cash > 0,
            f"starting_cash must be more than zero, got {self.starting_cash}",
        )
        _check(1 <= self.multiplier <= 4, f"multiplier must be from 1 to 4, got {self.multiplier}")


@dataclass(slots=True, frozen=True)
class JournalSettings:
    """The SQLite journal; ``load_settings`` fills ``path`` with a per-mode file when unset."""

    path: str | None = None


@dataclass(slots=True, frozen=True)
class LogSettings:
    """Log files written with loguru; ``load_settings`` fills ``dir`` when unset."""

    level: str = "INFO"
    dir: str | None = None
    json: bool = True
    rotation: str = "20 MB"
    retention: int = 10  # log files kept

    def __post_init__(self) -> None:
        level = self.level.strip().upper()
        _check(
            level in _LOG_LEVELS,
            f"level must be one of {', '.join(_LOG_LEVELS)}, got '{self.level}'",
        )
        object.__setattr__(self, "level", level)
        _check(bool(self.rotation.strip()), "rotation must not be empty")
        _check(self.retention >= 1, f"retention must be 1 or more, got {self.retention}")


@dataclass(slots=True, frozen=True)
class AlpacaSettings:
    """Alpaca credentials and endpoints. The keys are secrets: kept out of ``repr`` and masked.

    ``base_url`` is the trading REST API (``load_settings`` picks paper or live by
    mode when unset); ``stream_url`` is the market-data stream without the
    ``/v2/<feed>`` path.
    """

    key_id: str | None = field(default=None, repr=False, metadata={_SECRET: _SHOW_ENDS})
    secret_key: str | None = field(default=None, repr=False, metadata={_SECRET: _SHOW_NOTHING})
    base_url: str | None = None
    data_url: str = "https://data.alpaca.markets"
    stream_url: str = "wss://stream.data.alpaca.markets"
    feed: str = "iex"

    def __post_init__(self) -> None:
        feed = self.feed.strip().lower()
        _check(feed in _FEEDS, f"feed must be one of {', '.join(_FEEDS)}, got '{self.feed}'")
        object.__setattr__(self, "feed", feed)


@dataclass(slots=True, frozen=True)
class ConsoleSettings:
    """The Textual console: look, refresh rate, keys and the order ticket's default size.

    ``keymap`` maps a binding id (the console's help screen, F1, lists them) to
    the keys that should trigger it, comma-separated (``app.buy_ticket = "f5,ctrl+b"``).
    ``fps`` becomes ``TEXTUAL_FPS`` when the environment does not set it: a
    lower frame rate keeps a console over SSH light on the link.
    """

    theme: str = "tickdeck-dark"
    refresh_hz: int = 20  # snapshots pulled from the engine per second
    fps: int = 30
    mouse: bool = True
    ticket_qty: Decimal = Decimal(100)  # quantity of the tickets F-keys prefill
    keymap: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        theme = self.theme.strip()
        _check(bool(theme), "theme must not be empty")
        object.__setattr__(self, "theme", theme)
        _check(
            MIN_REFRESH_HZ <= self.refresh_hz <= MAX_REFRESH_HZ,
            f"refresh_hz must be from {MIN_REFRESH_HZ} to {MAX_REFRESH_HZ}, got {self.refresh_hz}",
        )
        _check(1 <= self.fps <= 120, f"fps must be from 1 to 120, got {self.fps}")
        _check(self.ticket_qty > 0, f"ticket_qty must be more than zero, got {self.ticket_qty}")
        for binding_id, keys in self.keymap.items():
            _check(bool(binding_id.strip()), "keymap must not contain an empty binding id")
            _check(bool(keys.strip()), f"keymap entry '{binding_id}' must name at least one key")


class OnStop(StrEnum):
    """What the daemon does with open orders when it is stopped (SIGTERM)."""

    CANCEL = "cancel"
    KEEP = "keep"


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:5555`` for IPv6) as a pair; ``ValueError`` with a sentence if not."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"'{text}' is not HOST:PORT (e.g. 127.0.0.1:5555)")
    return host, int(port)


@dataclass(slots=True, frozen=True)
class DaemonSettings:
    """The headless daemon (``tickdeck engine --daemon``): pid file, attach socket, health API.

    ``pid_file`` and ``socket`` default to the user's runtime dir (else state dir);
    ``health`` is the health API's ``HOST:PORT`` ("none" turns it off); ``token``, when
    set, must be given by every console that attaches (``tickdeck attach --token``).
    """

    on_stop: OnStop = OnStop.CANCEL
    pid_file: str | None = None
    socket: str | None = None
    token: str | None = field(default=None, repr=False, metadata={_SECRET: _SHOW_NOTHING})
    health: str | None = "127.0.0.1:5555"

    def __post_init__(self) -> None:
        if self.health is not None:
            parse_host_port(self.health)


@dataclass(slots=True, frozen=True)
class Settings:
    """The effective configuration. Build it with ``load_settings``.

    ``sources`` maps each dotted key whose value did not come from the defaults
    to its ``Origin``; ``source_of`` answers for any key.
    """

    mode: Mode = Mode.SIM
    seed: int = 7
    speed: float = 1.0  # market time per wall time; 0 runs as fast as possible
    duration: float | None = None  # seconds of market time to run; None: until stopped
    data: str | None = None  # replay data path
    symbols: list[str] | None = None  # watchlist override
    cancel_on_exit: bool = True
    status_interval: float = 5.0  # seconds between headless status lines
    sim: SimSettings = field(default_factory=SimSettings)
    venue: VenueSettings = field(default_factory=VenueSettings)
    risk: RiskConfig = field(default_factory=RiskConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    journal: JournalSettings = field(default_factory=JournalSettings)
    log: LogSettings = field(default_factory=LogSettings)
    alpaca: AlpacaSettings = field(default_factory=AlpacaSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    bots: BotSettings = field(default_factory=BotSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    s3: StoreSettings = field(default_factory=StoreSettings)
    sources: Mapping[str, Origin] = field(
        default_factory=dict, compare=False, repr=False, metadata={"setting": False}
    )

    def __post_init__(self) -> None:
        _check(self.speed >= 0, f"speed must be zero or more, got {self.speed}")
        _check(
            self.duration is None or self.duration > 0,
            f"duration must be more than zero, got {self.duration}",
        )
        _check(
            self.status_interval > 0,
            f"status_interval must be more than zero, got {self.status_interval}",
        )
        if self.symbols is not None:
            symbols = [s.strip().upper() for s in self.symbols]
            _check(all(symbols), "symbols must not contain an empty symbol")
            object.__setattr__(self, "symbols", symbols)

    def source_of(self, key: str) -> Origin:
        """Where the value of dotted ``key`` came from."""
        return self.sources.get(key, _DEFAULT_ORIGIN)


@dataclass(slots=True, frozen=True)
class _Setting:
    key: str  # dotted: "seed", "risk.max_order_qty"
    section: str  # "" at top level
    name: str
    hint: object
    mask: str | None


def _build_schema() -> dict[str, _Setting]:
    schema: dict[str, _Setting] = {}
    hints = get_type_hints(Settings)
    for top in fields(Settings):
        if not top.metadata.get("setting", True):
            continue
        hint = hints[top.name]
        if isinstance(hint, type) and is_dataclass(hint):
            section_hints = get_type_hints(hint)
            for sub in fields(hint):
                key = f"{top.name}.{sub.name}"
                schema[key] = _Setting(
                    key, top.name, sub.name, section_hints[sub.name], sub.metadata.get(_SECRET)
                )
        else:
            schema[top.name] = _Setting(top.name, "", top.name, hint, None)
    return schema


_SCHEMA = _build_schema()
_SECTIONS = tuple(dict.fromkeys(s.section for s in _SCHEMA.values() if s.section))


def setting_keys() -> tuple[str, ...]:
    """Every dotted setting key, in the order ``render_settings`` prints them."""
    return tuple(_SCHEMA)


def default_config_path() -> Path:
    """Where the config file lives when neither ``TICKDECK_CONFIG`` nor an explicit path says."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def _show(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _convert(value: object, hint: object) -> object:
    """``value`` as the type ``hint`` names, or ``ValueError`` ending the sentence "key ..."."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"settings cannot convert to {hint}")
        target = inner[0]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        if value is False and target not in (bool, str):
            return None
        return _convert(value, target)
    if origin in (list, tuple):
        item = get_args(hint)[0]
        if isinstance(value, str):
            items: list[object] = [part for part in re.split(r"[,\s]+", value) if part]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise ValueError(f"must be a list, got {_show(value)}")
        converted = [_convert(each, item) for each in items]
        return converted if origin is list else tuple(converted)
    if origin is dict:
        return _to_table(value, get_args(hint))
    if hint is bool:
        return _to_bool(value)
    if hint is int:
        return _to_int(value)
    if hint is float:
        return _to_float(value)
    if hint is Decimal:
        return _to_decimal(value)
    if hint is str:
        return _to_str(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _to_enum(value, hint)
    raise TypeError(f"settings cannot convert to {hint}")


def _to_table(value: object, hints: tuple[object, ...]) -> dict[object, object]:
    """A TOML table, or text of ``name=value`` pairs separated by semicolons (env, CLI).

    TOML reads an unquoted dotted name (``quotes.up = "k"``) as nested tables;
    they are joined back into the dotted name the user wrote.
    """
    key_hint, value_hint = hints
    if isinstance(value, str):
        pairs: list[tuple[object, object]] = []
        for part in (p.strip() for p in value.split(";")):
            if not part:
                continue
            name, equals, item = part.partition("=")
            if not equals:
                raise ValueError(f"must be name=value pairs separated by ';', got '{part}'")
            pairs.append((name.strip(), item.strip()))
    elif isinstance(value, Mapping):
        pairs = list(_dotted(value))
    else:
        raise ValueError(f"must be a table, got {_show(value)}")
    return {_convert(name, key_hint): _convert(item, value_hint) for name, item in pairs}


def _dotted(table: Mapping[object, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    for name, item in table.items():
        if isinstance(item, Mapping):
            yield from _dotted(item, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", item


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError(f"must be true or false, got {_show(value)}")


def _to_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal | float) and _finite(value) and value == int(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"must be a whole number, got {_show(value)}")


def _finite(number: float | Decimal) -> bool:
    return number.is_finite() if isinstance(number, Decimal) else math.isfinite(number)


def _to_float(value: object) -> float:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool) and _finite(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    raise ValueError(f"must be a number, got {_show(value)}")


def _to_decimal(value: object) -> Decimal:
    if not isinstance(value, bool) and isinstance(value, int | float | Decimal | str):
        try:
            return to_decimal(value)
        except ValueError:
            pass
    raise ValueError(f"must be a number, got {_show(value)}")


def _to_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, date):  # a TOML date or datetime (datetime is a date)
        return value.isoformat()
    raise ValueError(f"must be text, got {_show(value)}")


def _to_enum(value: object, enum: type[Enum]) -> Enum:
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        for member in enum:
            if str(member.value).lower() == word or member.name.lower() == word:
                return member
    choices = ", ".join(str(member.value) for member in enum)
    raise ValueError(f"must be one of {choices}, got {_show(value)}")


def _unknown(key: str, candidates: list[str], where: str = "", prefix: str = "") -> str:
    """ "is not a known setting", with the closest known name when there is one (typos)."""
    stems = {candidate.removeprefix(prefix): candidate for candidate in candidates}
    close = difflib.get_close_matches(key.removeprefix(prefix), list(stems), n=1, cutoff=0.75)
    hint = f"; did you mean '{stems[close[0]]}'?" if close else ""
    return f"is not a known setting{where}{hint}"


def _env_name(key: str) -> str:
    return _ENV_PREFIX + key.upper().replace(".", "__")


_Layer = dict[str, tuple[object, Origin]]
_SECRET_KEYS = (
    "alpaca.key_id",
    "alpaca.secret_key",
    "daemon.token",
    "s3.access_key",
    "s3.secret_key",
)


def _file_layer(path: Path, explicit_by: str | None) -> _Layer:
    if not path.is_file():
        if explicit_by is None:
            logger.debug("no config file at {}; using defaults", path)
            return {}
        raise ConfigError(explicit_by, f"the config file '{path}' does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(str(path), f"cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "is not UTF-8 text") from None
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), _toml_problem(str(error))) from None
    logger.debug("reading config file {}", path)
    origin = Origin(Source.FILE, str(path))
    layer: _Layer = {}
    for key, value in document.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(key, f"must be a table of settings, got {_show(value)}")
            for name, item in value.items():
                layer[f"{key}.{name}"] = (item, origin)
        else:
            layer[key] = (value, origin)
    for key in layer:
        if key not in _SCHEMA:
            raise ConfigError(key, _unknown(key, list(_SCHEMA), f" (in {path})"))
    secrets = [key for key in _SECRET_KEYS if layer.get(key, (None,))[0]]
    if secrets and path.stat().st_mode & 0o077:
        # A key readable by other users of the box is a key given away.
        raise ConfigError(
            secrets[0], f"is in {path}, which other users can read; run `chmod 600 {path}`"
        )
    return layer


def _toml_problem(message: str) -> str:
    """tomllib's "Reason (at line 3, column 7)" as "is not valid TOML at line 3, column 7 (...)"."""
    match = re.fullmatch(r"(.*) \(at (.*)\)", message, flags=re.DOTALL)
    if match is None:
        return f"is not valid TOML ({message})"
    reason, where = match.groups()
    return f"is not valid TOML at {where} ({reason[:1].lower()}{reason[1:]})"


def _env_layer(env: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for name, key in (*ALPACA_ENV.items(), *S3_ENV.items()):
        if name in env:
            layer[key] = (env[name], Origin(Source.ENV, name))
    known_names = {_env_name(key): key for key in _SCHEMA}
    for name, value in env.items():
        if not name.startswith(_ENV_PREFIX) or name in RESERVED_ENV:
            continue
        key = known_names.get(name.upper())
        if key is None and (name in S3_ENV or name.startswith(RESERVED_ENV_PREFIXES)):
            continue
        if key is None:
            raise ConfigError(name, _unknown(name.upper(), list(known_names), prefix=_ENV_PREFIX))
        layer[key] = (value, Origin(Source.ENV, name))
    return layer


def _cli_layer(cli: Mapping[str, object]) -> _Layer:
    layer: _Layer = {}
    for name, value in cli.items():
        if value is None:
            continue
        key = name.replace("-", "_").lower()
        if key not in _SCHEMA:
            raise ConfigError(name, _unknown(key, list(_SCHEMA)))
        layer[key] = (value, Origin(Source.CLI, name))
    return layer


def _where(origin: Origin) -> str:
    if origin.source is Source.ENV:
        return f" (from {origin.name})"
    if origin.source is Source.FILE:
        return f" (in {origin.name})"
    if origin.source is Source.CLI:
        return " (from the command line)"
    return ""


def _construct(
    cls: type[_T], values: dict[str, object], section: str, origins: Mapping[str, Origin]
) -> _T:
    """``cls(**values)``; a validation error becomes a ConfigError naming the key at fault.

    The class's own message does not say which key it was about, so each given
    value is tried alone on top of the defaults; a failure that needs two values
    together (a soft limit above a hard one) is blamed on the section.
    """
    try:
        return cls(**values)
    except (ValueError, TypeError, ArithmeticError) as error:
        culprit = next((name for name in values if _fails(cls, name, values[name])), None)
        if culprit is None:
            raise ConfigError(section or "settings", str(error)) from None
        key = f"{section}.{culprit}" if section else culprit
        where = _where(origins.get(key, _DEFAULT_ORIGIN))
        raise ConfigError(key, _tail(str(error), key, culprit) + where) from None


def _fails(cls: type, name: str, value: object) -> bool:
    try:
        cls(**{name: value})
    except (ValueError, TypeError, ArithmeticError):
        return True
    return False


def _tail(message: str, key: str, name: str) -> str:
    """A validation message without its leading key ("qty must be ..." -> "must be ...")."""
    for prefix in (f"{key} ", f"{name} "):
        rest = message[len(prefix) :]
        if message.startswith(prefix) and rest[:1].isalpha():
            return rest
    return message


def load_settings(
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cli: Mapping[str, object] | None = None,
) -> Settings:
    """The effective settings: defaults < TOML file < environment < CLI mapping.

    ``env`` defaults to ``os.environ``. The file is ``config_path``, else the path
    in ``TICKDECK_CONFIG``, else ``default_config_path()``; only the default may be
    missing. Unset ``journal.path``, ``log.dir`` and ``alpaca.base_url`` are
    filled from platformdirs and the mode. Raises ``ConfigError`` naming the key
    for any unknown key or invalid value.
    """
    env = os.environ if env is None else env
    if config_path is not None:
        path, explicit_by = Path(config_path), "config"
    elif env.get("TICKDECK_CONFIG"):
        path, explicit_by = Path(env["TICKDECK_CONFIG"]), "TICKDECK_CONFIG"
    else:
        path, explicit_by = default_config_path(), None
    merged: _Layer = {}
    merged.update(_file_layer(path, explicit_by))
    merged.update(_env_layer(env))
    merged.update(_cli_layer(cli or {}))

    origins = {key: origin for key, (_, origin) in merged.items()}
    values: dict[str, dict[str, object]] = {"": {}, **{section: {} for section in _SECTIONS}}
    for key, (raw, origin) in merged.items():
        setting = _SCHEMA[key]
        try:
            values[setting.section][setting.name] = _convert(raw, setting.hint)
        except ValueError as error:
            raise ConfigError(key, f"{error}{_where(origin)}") from None

    hints = get_type_hints(Settings)
    top = dict(values[""])
    for section in _SECTIONS:
        top[section] = _construct(hints[section], values[section], section, origins)
    settings = _construct(Settings, top, "", origins)
    return _fill_derived(dataclasses.replace(settings, sources=origins))


def _fill_derived(settings: Settings) -> Settings:
    """Defaults that depend on the platform or on other settings."""
    journal, log, alpaca = settings.journal, settings.log, settings.alpaca
    if journal.path is None:
        data_dir = Path(platformdirs.user_data_dir(APP_NAME))
        journal = JournalSettings(path=str(data_dir / f"journal-{settings.mode.value}.sqlite"))
    if log.dir is None:
        log = dataclasses.replace(log, dir=platformdirs.user_log_dir(APP_NAME))
    if alpaca.base_url is None:
        url = ALPACA_LIVE_URL if settings.mode is Mode.LIVE else ALPACA_PAPER_URL
        alpaca = dataclasses.replace(alpaca, base_url=url)
    return dataclasses.replace(settings, journal=journal, log=log, alpaca=alpaca)


def _mask_secret(value: str, show: str) -> str:
    """``value`` fit for a screen: ``"PK…W3"`` (at most two characters at each end) or stars."""
    if show != _SHOW_ENDS:
        return "********"
    keep = min(2, len(value) // 4)
    return f"{value[:keep]}…{value[-keep:]}" if keep else "…"


def _toml_value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return json.dumps(str(value.value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = (
            f"{json.dumps(str(k), ensure_ascii=False)} = {_toml_value(v)}" for k, v in value.items()
        )
        return "{" + ", ".join(pairs) + "}"
    return repr(value)


def _comment(origin: Origin) -> str:
    if origin.source in (Source.ENV, Source.CLI):
        return f"# {origin.source.value} {origin.name}"
    return f"# {origin.source.value}"


def render_settings(settings: Settings) -> str:
    """The effective settings as TOML-like text, secrets masked, each value's source in a comment.

    Unset optional values print as ``none``; the config file, when one was read,
    is named in the header.
    """
    files = sorted({o.name for o in settings.sources.values() if o.source is Source.FILE})
    lines = ["# tickdeck settings in effect; after each value, where it came from"]
    lines += [f"# file: {name}" for name in files]
    blocks: dict[str, list[tuple[str, str]]] = {"": []}
    for setting in _SCHEMA.values():
        holder = getattr(settings, setting.section) if setting.section else settings
        value = getattr(holder, setting.name)
        text = _toml_value(value)
        if setting.mask is not None and isinstance(value, str):
            text = json.dumps(_mask_secret(value, setting.mask), ensure_ascii=False)
        pair = (f"{setting.name} = {text}", _comment(settings.source_of(setting.key)))
        blocks.setdefault(setting.section, []).append(pair)
    for section, pairs in blocks.items():
        lines.append("")
        if section:
            lines.append(f"[{section}]")
        width = max(len(left) for left, _ in pairs)
        lines += [f"{left.ljust(width)}  {comment}" for left, comment in pairs]
    return "\n".join(lines) + "\n"
