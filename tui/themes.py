"""Themes as data: the TOML files in the top-level ``themes`` package, checked and registered.

Each file is one Textual ``Theme`` (the schema is in ``themes/__init__.py``).
A mistake in a file — an unknown key, a colour Textual cannot parse, a name
that is not the file's stem — is one ``ThemeError`` sentence naming the file,
so a bad theme never half-applies.
"""

from __future__ import annotations

import tomllib
from importlib import resources

from textual.app import App
from textual.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES, Theme

THEMES_PACKAGE = "themes"
DEFAULT_THEME = "tickdeck-dark"

_COLOURS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_NUMBERS = ("luminosity_spread", "text_alpha")
_KNOWN = frozenset({"name", "dark", "variables", *_COLOURS, *_NUMBERS})


class ThemeError(ValueError):
    """A theme file or a theme name that cannot be used; the message is one sentence."""


def parse_theme(text: str, source: str) -> Theme:
    """The theme in TOML ``text``; ``source`` names the file in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ThemeError(f"theme {source} is not valid TOML ({error})") from None
    unknown = sorted(set(document) - _KNOWN)
    if unknown:
        raise ThemeError(f"theme {source} has unknown key '{unknown[0]}'")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"theme {source} needs a name")
    if "primary" not in document:
        raise ThemeError(f"theme {source} needs a primary colour")
    values: dict[str, object] = {"name": name.strip()}
    for key in _COLOURS:
        if key in document:
            values[key] = _colour(document[key], f"{key} in theme {source}")
    for key in _NUMBERS:
        if key in document:
            number = document[key]
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ThemeError(f"{key} in theme {source} must be a number, got {number!r}")
            values[key] = float(number)
    dark = document.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeError(f"dark in theme {source} must be true or false, got {dark!r}")
    values["dark"] = dark
    variables = document.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(value, str) for value in variables.values()
    ):
        raise ThemeError(f"variables in theme {source} must be a table of text values")
    values["variables"] = dict(variables)
    return Theme(**values)


def _colour(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ThemeError(f'{where} must be a colour such as "#2F81F7", got {value!r}')
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f"{where} is not a colour: '{value}'") from None
    return value


def load_themes() -> dict[str, Theme]:
    """Every theme shipped in the ``themes`` package, by name, sorted by name."""
    themes: dict[str, Theme] = {}
    folder = resources.files(THEMES_PACKAGE)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        stem = entry.name.removesuffix(".toml")
        theme = parse_theme(entry.read_text(encoding="utf-8"), entry.name)
        if theme.name != stem:
            raise ThemeError(f"theme {entry.name} is named '{theme.name}'; name it '{stem}'")
        themes[theme.name] = theme
    return themes


def theme_names() -> tuple[str, ...]:
    """The names a console may be started with: tickdeck's themes, then Textual's own."""
    return (*load_themes(), *sorted(BUILTIN_THEMES))


def check_theme_name(name: str) -> None:
    """Raise ``ThemeError`` when no theme is called ``name``."""
    if name not in theme_names():
        ours = ", ".join(load_themes())
        raise ThemeError(f"there is no theme '{name}'; tickdeck's themes are {ours}")


def register_themes(app: App) -> tuple[str, ...]:
    """Register tickdeck's themes on ``app``; returns their names in order."""
    themes = load_themes()
    for theme in themes.values():
        app.register_theme(theme)
    return tuple(themes)
