"""OCC option symbols: parsing, formatting, the padded form, refusals and the round trip."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.errors import InputError
from engine.options.occ import OptionSymbol, Right, format_occ, is_occ, parse_occ


def test_parses_the_compact_form() -> None:
    assert parse_occ("AAPL240119C00190000") == OptionSymbol(
        root="AAPL", expiry=date(2024, 1, 19), right=Right.CALL, strike=Decimal("190")
    )


def test_parses_a_fractional_strike_put() -> None:
    symbol = parse_occ("SPY231215P00452500")
    assert (symbol.root, symbol.right, symbol.strike) == ("SPY", Right.PUT, Decimal("452.5"))


def test_parses_the_padded_21_character_form() -> None:
    assert parse_occ("AAPL  240119C00190000") == parse_occ("AAPL240119C00190000")


def test_parses_lower_case_and_surrounding_spaces() -> None:
    assert parse_occ("  aapl240119p00190000 ").right is Right.PUT


def test_formats_compact_and_padded() -> None:
    symbol = OptionSymbol("SPXW", date(2021, 1, 8), Right.PUT, Decimal("3700.5"))
    assert format_occ(symbol) == "SPXW210108P03700500"
    assert format_occ(symbol, padded=True) == "SPXW  210108P03700500"


def test_str_is_the_compact_symbol() -> None:
    assert str(parse_occ("TSLA250620C01000000")) == "TSLA250620C01000000"


@pytest.mark.parametrize(
    "text",
    [
        "AAPL",
        "",
        "240119C00190000",
        "AAPL240119X00190000",
        "AAPL241319C00190000",
        "AAPL240230C00190000",
        "AAPL240119C0019000",
        "AAPL240119C00000000",
        "TOOLONGR240119C00190000",
        "AAPL 240119C00190000",
    ],
)
def test_refuses_malformed_symbols_with_one_sentence(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_occ(text)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message


def test_refuses_a_strike_finer_than_a_tenth_of_a_cent() -> None:
    with pytest.raises(InputError, match="three decimals"):
        OptionSymbol("AAPL", date(2024, 1, 19), Right.CALL, Decimal("190.0005"))


def test_is_occ_tells_options_from_stocks() -> None:
    assert is_occ("AAPL240119C00190000")
    assert not is_occ("AAPL")


_roots = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
_strikes = st.integers(min_value=1, max_value=99_999_999).map(lambda n: Decimal(n) / 1000)


@given(
    root=_roots,
    expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    right=st.sampled_from(Right),
    strike=_strikes,
    padded=st.booleans(),
)
def test_format_then_parse_round_trips(
    root: str, expiry: date, right: Right, strike: Decimal, padded: bool
) -> None:
    symbol = OptionSymbol(root=root, expiry=expiry, right=right, strike=strike)
    text = format_occ(symbol, padded=padded)
    assert len(text) == (21 if padded else len(root) + 15)
    assert parse_occ(text) == symbol
