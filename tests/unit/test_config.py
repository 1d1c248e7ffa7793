"""Settings: layers override in order, values are typed exactly, and every mistake names its key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import platformdirs
import pytest

from engine.config import (
    ALPACA_LIVE_URL,
    ALPACA_PAPER_URL,
    Mode,
    Origin,
    Settings,
    Source,
    load_settings,
    render_settings,
)
from engine.core.errors import ConfigError
from engine.risk.config import RiskConfig


@pytest.fixture
def config_file(tmp_path: Path):
    """Write a TOML file and return its path."""

    def write(text: str = "") -> Path:
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(config_file):
    """load_settings isolated from the user's files and environment."""

    def run(
        toml: str = "", env: dict[str, str] | None = None, cli: dict[str, object] | None = None
    ) -> Settings:
        return load_settings(config_path=config_file(toml), env=env or {}, cli=cli)

    return run


def config_error(load, **layers) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(**layers)
    return caught.value


# --- layers --------------------------------------------------------------------


def test_defaults_apply_when_nothing_is_given(load):
    settings = load()
    assert (settings.mode, settings.seed, settings.speed, settings.risk) == (
        Mode.SIM,
        7,
        1.0,
        RiskConfig(),
    )


def test_the_file_overrides_the_defaults(load):
    assert load("seed = 11").seed == 11


def test_the_environment_overrides_the_file(load):
    assert load("seed = 11", env={"TICKDECK_SEED": "12"}).seed == 12


def test_the_cli_overrides_the_environment(load):
    assert load("seed = 11", env={"TICKDECK_SEED": "12"}, cli={"seed": 13}).seed == 13


def test_a_cli_value_of_none_means_not_given(load):
    assert load(env={"TICKDECK_SEED": "12"}, cli={"seed": None}).seed == 12


def test_section_keys_come_from_tables_env_and_dotted_cli_keys(load):
    toml = "[risk]\nmax_order_qty = 100\nmax_open_orders = 3\n"
    env = {"TICKDECK_RISK__MAX_OPEN_ORDERS": "4", "TICKDECK_VENUE__WALK_TICKS": "3"}
    settings = load(toml, env=env, cli={"risk.max_orders_per_second": 5})
    assert (
        settings.risk.max_order_qty,
        settings.risk.max_open_orders,
        settings.risk.max_orders_per_second,
        settings.venue.walk_ticks,
    ) == (Decimal(100), 4, 5, 3)


def test_alpaca_conventional_env_names_fill_the_alpaca_section(load):
    env = {
        "APCA_API_KEY_ID": "PKTEST",
        "APCA_API_SECRET_KEY": "s3cret",
        "APCA_API_BASE_URL": "http://127.0.0.1:8080",
        "APCA_API_DATA_URL": "http://127.0.0.1:8081",
    }
    alpaca = load(env=env).alpaca
    assert (alpaca.key_id, alpaca.secret_key, alpaca.base_url, alpaca.data_url) == (
        "PKTEST",
        "s3cret",
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8081",
    )


def test_a_tickdeck_alpaca_variable_beats_its_apca_twin(load):
    env = {"APCA_API_KEY_ID": "PKAPCA", "TICKDECK_ALPACA__KEY_ID": "PKTICKDECK"}
    assert load(env=env).alpaca.key_id == "PKTICKDECK"


def test_tickdeck_config_names_the_file(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text("seed = 21\n", encoding="utf-8")
    assert load_settings(env={"TICKDECK_CONFIG": str(path)}).seed == 21


def test_a_missing_default_file_is_fine():
    assert load_settings(env={}).seed == 7


def test_a_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(config_path=tmp_path / "absent.toml", env={})
    assert caught.value.key == "config"


def test_a_missing_file_named_by_tickdeck_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"TICKDECK_CONFIG": str(tmp_path / "absent.toml")})
    assert caught.value.key == "TICKDECK_CONFIG"


def test_each_value_records_where_it_came_from(load, tmp_path):
    settings = load("seed = 1\n", env={"TICKDECK_SPEED": "2"}, cli={"mode": "replay"})
    assert (
        settings.source_of("seed"),
        settings.source_of("speed"),
        settings.source_of("mode"),
        settings.source_of("duration"),
    ) == (
        Origin(Source.FILE, str(tmp_path / "config.toml")),
        Origin(Source.ENV, "TICKDECK_SPEED"),
        Origin(Source.CLI, "mode"),
        Origin(Source.DEFAULT),
    )


# --- derived defaults ---------------------------------------------------------------


def test_the_journal_defaults_to_a_per_mode_file_in_the_user_data_dir(load):
    expected = Path(platformdirs.user_data_dir("tickdeck")) / "journal-paper.sqlite"
    assert load(cli={"mode": "paper"}).journal.path == str(expected)


def test_the_log_dir_defaults_to_the_user_log_dir(load):
    assert load().log.dir == platformdirs.user_log_dir("tickdeck")


def test_an_explicit_journal_path_is_kept(load, tmp_path):
    path = str(tmp_path / "j.sqlite")
    assert load(env={"TICKDECK_JOURNAL__PATH": path}).journal.path == path


def test_live_mode_defaults_to_the_live_trading_url(load):
    assert load(cli={"mode": "live"}).alpaca.base_url == ALPACA_LIVE_URL


def test_paper_mode_defaults_to_the_paper_trading_url(load):
    assert load(cli={"mode": "paper"}).alpaca.base_url == ALPACA_PAPER_URL


# --- conversion -----------------------------------------------------------------------


def test_toml_floats_stay_exact_decimals(load):
    assert load("[venue]\nfee_per_share = 0.005\n").venue.fee_per_share == Decimal("0.005")


def test_env_decimals_stay_exact(load):
    settings = load(env={"TICKDECK_VENUE__FEE_PER_SHARE": "0.005"})
    assert str(settings.venue.fee_per_share) == "0.005"


def test_cli_floats_become_exact_decimals(load):
    assert load(cli={"risk.collar_soft_pct": 2.5}).risk.collar_soft_pct == Decimal("2.5")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("yes", True),
        ("no", False),
        ("YES", True),
        (" off ", False),
    ],
)
def test_booleans_accept_the_usual_words(load, text, expected):
    assert load(env={"TICKDECK_CANCEL_ON_EXIT": text}).cancel_on_exit is expected


@pytest.mark.parametrize("text", ["none", "None", ""])
def test_an_optional_limit_is_turned_off_by_none_or_empty(load, text):
    assert load(env={"TICKDECK_RISK__MAX_ORDER_QTY": text}).risk.max_order_qty is None


def test_toml_false_turns_an_optional_limit_off(load):
    assert load("[risk]\ndaily_loss_limit = false\n").risk.daily_loss_limit is None


def test_a_list_may_be_given_as_comma_separated_text(load):
    assert load(env={"TICKDECK_SYMBOLS": "aapl, msft,spy"}).symbols == ["AAPL", "MSFT", "SPY"]


def test_a_toml_date_is_accepted_as_the_sim_start(load):
    assert load("[sim]\nstart = 2024-03-15\n").sim.start == "2024-03-15"


def test_mode_ignores_case(load):
    assert load(env={"TICKDECK_MODE": "Paper"}).mode is Mode.PAPER


def test_an_integral_float_is_a_whole_number(load):
    assert load("seed = 9.0").seed == 9


def test_a_path_from_the_cli_becomes_text(load, tmp_path):
    assert load(cli={"data": tmp_path}).data == str(tmp_path)


# --- mistakes -------------------------------------------------------------------------


def test_an_unknown_file_key_is_an_error_naming_it(load):
    error = config_error(load, toml="sede = 3\n")
    assert (error.key, str(error).endswith("did you mean 'seed'?")) == ("sede", True)


def test_an_unknown_key_in_a_section_is_an_error_naming_it(load):
    assert config_error(load, toml="[risk]\nmax_ordr_qty = 3\n").key == "risk.max_ordr_qty"


def test_an_unknown_section_is_an_error_naming_it(load):
    assert config_error(load, toml="[riskk]\nmax_order_qty = 3\n").key == "riskk"


def test_a_section_that_is_not_a_table_is_an_error(load):
    assert config_error(load, toml="risk = 3\n").key == "risk"


def test_an_unknown_tickdeck_variable_is_an_error_naming_it(load):
    error = config_error(load, env={"TICKDECK_RISK__MAX_ORDR_QTY": "5"})
    assert error.key == "TICKDECK_RISK__MAX_ORDR_QTY"


def test_an_unknown_cli_key_is_an_error_naming_it(load):
    assert config_error(load, cli={"risk.nope": 1}).key == "risk.nope"


@pytest.mark.parametrize(
    "name", ["TICKDECK_SAMPLE_DATA", "TICKDECK_GPU", "TICKDECK_S3_ENDPOINT", "OTHER_THING"]
)
def test_variables_owned_by_other_subsystems_are_ignored(load, name):
    assert load(env={name: "x"}).seed == 7


def test_an_invalid_number_names_the_key_and_the_value(load):
    error = config_error(load, env={"TICKDECK_RISK__MAX_ORDER_QTY": "abc"})
    assert str(error) == (
        "config: risk.max_order_qty: must be a number, got 'abc' "
        "(from TICKDECK_RISK__MAX_ORDER_QTY)"
    )


def test_a_risk_limit_the_risk_config_refuses_names_the_key(load):
    error = config_error(load, toml="[risk]\nmax_order_qty = -5\n")
    assert (error.key, "must be positive" in str(error)) == ("risk.max_order_qty", True)


def test_a_venue_value_out_of_range_names_the_key(load):
    error = config_error(load, cli={"venue.latency_ms": -1})
    assert str(error) == (
        "config: venue.latency_ms: must be zero or more, got -1.0 (from the command line)"
    )


def test_an_invalid_boolean_names_the_key(load):
    assert config_error(load, env={"TICKDECK_CANCEL_ON_EXIT": "maybe"}).key == "cancel_on_exit"


def test_an_unknown_mode_lists_the_modes(load):
    error = config_error(load, toml='mode = "real"\n')
    assert str(error).startswith(
        "config: mode: must be one of sim, replay, paper, live, got 'real'"
    )


def test_a_fractional_whole_number_names_the_key(load):
    assert config_error(load, toml="seed = 7.5\n").key == "seed"


def test_a_toml_syntax_error_names_the_file_and_the_line(load, tmp_path):
    error = config_error(load, toml="seed = 7\nmode = = 1\nspeed = 2\n")
    assert (error.key, "line 2" in str(error)) == (str(tmp_path / "config.toml"), True)


def test_a_file_that_is_not_utf8_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"seed = \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_path=path, env={})
    assert caught.value.key == str(path)


# --- the console section ----------------------------------------------------------------


def test_console_defaults(load):
    console = load().console
    assert (console.theme, console.refresh_hz, console.fps, console.mouse, console.keymap) == (
        "tickdeck-dark",
        20,
        30,
        True,
        {},
    )
    assert console.ticket_qty == Decimal(100)


@pytest.mark.parametrize("hz", ["9", "31"])
def test_a_refresh_rate_outside_10_to_30_hz_names_the_key(load, hz):
    error = config_error(load, env={"TICKDECK_CONSOLE__REFRESH_HZ": hz})
    assert str(error) == (
        f"config: console.refresh_hz: must be from 10 to 30, got {hz} "
        "(from TICKDECK_CONSOLE__REFRESH_HZ)"
    )


def test_the_keymap_comes_from_a_toml_table(load):
    toml = '[console.keymap]\n"app.buy_ticket" = "f5,ctrl+b"\nhelp = "f1"\n'
    assert load(toml).console.keymap == {"app.buy_ticket": "f5,ctrl+b", "help": "f1"}


def test_unquoted_dotted_keymap_names_keep_their_dots(load):
    toml = '[console.keymap]\napp.buy_ticket = "f5"\nquotes.up = "k"\n'
    assert load(toml).console.keymap == {"app.buy_ticket": "f5", "quotes.up": "k"}


def test_the_keymap_comes_from_semicolon_separated_pairs_in_the_environment(load):
    env = {"TICKDECK_CONSOLE__KEYMAP": "app.buy_ticket = f5,ctrl+b; app.help=f1"}
    assert load(env=env).console.keymap == {"app.buy_ticket": "f5,ctrl+b", "app.help": "f1"}


def test_a_keymap_pair_without_keys_names_the_key(load):
    error = config_error(load, env={"TICKDECK_CONSOLE__KEYMAP": "help"})
    assert error.key == "console.keymap" and "'help'" in str(error)


def test_a_keymap_entry_with_no_keys_is_an_error(load):
    error = config_error(load, toml='[console.keymap]\nhelp = " "\n')
    assert (error.key, "'help'" in str(error)) == ("console.keymap", True)


def test_a_keymap_that_is_not_a_table_names_the_key(load):
    assert config_error(load, toml="[console]\nkeymap = 3\n").key == "console.keymap"


# --- render_settings ------------------------------------------------------------------


def test_render_masks_the_key_id_to_two_characters_each_end(load):
    text = render_settings(load(env={"APCA_API_KEY_ID": "PKABCDEFGHIJKLMNW3"}))
    assert 'key_id = "PK…W3"' in text
    assert "PKABCDEFGHIJKLMNW3" not in text


def test_render_hides_the_secret_key_entirely(load):
    text = render_settings(load(env={"APCA_API_SECRET_KEY": "topsecretvalue"}))
    assert 'secret_key = "********"' in text
    assert "topsecretvalue" not in text


def test_render_shows_a_short_key_id_with_fewer_characters(load):
    assert 'key_id = "P…1"' in render_settings(load(env={"APCA_API_KEY_ID": "PK01"}))


def test_render_shows_an_unset_secret_as_none(load):
    assert "secret_key = none" in render_settings(load())


def test_secrets_stay_out_of_repr(load):
    settings = load(env={"APCA_API_KEY_ID": "PKABCDEFGH", "APCA_API_SECRET_KEY": "topsecret"})
    assert "PKABCDEFGH" not in repr(settings) and "topsecret" not in repr(settings)


def test_render_comments_each_value_with_its_source(load):
    text = render_settings(load("seed = 1\n", env={"TICKDECK_SPEED": "2"}, cli={"duration": 60}))
    lines = {line.split("=")[0].strip(): line for line in text.splitlines() if "=" in line}
    assert (
        lines["seed"].endswith("# file"),
        lines["speed"].endswith("# env TICKDECK_SPEED"),
        lines["duration"].endswith("# cli duration"),
        lines["cancel_on_exit"].endswith("# default"),
    ) == (True, True, True, True)


def test_render_puts_section_values_under_their_table(load):
    text = render_settings(load("[risk]\nmax_order_qty = 250\n"))
    risk = text.split("[risk]\n", 1)[1]
    assert risk.splitlines()[0].startswith("max_order_qty = 250 ")


def test_render_names_the_config_file_that_was_read(load, tmp_path):
    text = render_settings(load("seed = 1\n"))
    assert f"# file: {tmp_path / 'config.toml'}" in text


def test_render_shows_the_keymap_as_an_inline_table(load):
    text = render_settings(load('[console.keymap]\nhelp = "f1"\n'))
    assert 'keymap = {"help" = "f1"}' in text


def test_alpaca_keys_in_a_file_other_users_can_read_are_refused(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[alpaca]\nkey_id = "PKABCDEF"\nsecret_key = "SECRETSECRET"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        load_settings(config_path=path, env={})
    assert caught.value.key == "alpaca.key_id"
    assert "chmod 600" in str(caught.value) and "SECRETSECRET" not in str(caught.value)
    path.chmod(0o600)
    assert load_settings(config_path=path, env={}).alpaca.key_id == "PKABCDEF"


def test_the_market_data_stream_url_comes_from_apca_api_stream_url():
    settings = load_settings(env={"APCA_API_STREAM_URL": "ws://127.0.0.1:9999"})
    assert settings.alpaca.stream_url == "ws://127.0.0.1:9999"
