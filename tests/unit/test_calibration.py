"""Calibration of sim-market symbol profiles from daily history."""

from __future__ import annotations

import os
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from engine.core.errors import DataError, InputError
from engine.data.calibration import (
    DEFAULT_WATCHLIST,
    VOL_WINDOW,
    VOLUME_WINDOW,
    bundled_symbols,
    calibrate,
    estimate_quote_size,
    estimate_spread_bps,
    load_profiles,
    parse_daily_csv,
)

HEADER = "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient"

# Adjusted closes 100 -> 110 -> 99 -> 108.9: log returns ln 1.1, ln 0.9, ln 1.1.
# Mean 0.0284200; deviations 0.0668902, -0.1337805, 0.0668902; squares sum to
# 0.0268458; over n-1 = 2 that is 0.0134229, whose square root is 0.1158573.
# A 2:1 split on 01-06 doubles the two earlier volumes: (2000 + 4000 + 3000 + 4000) / 4 = 3250.
FOUR_DAYS = "\n".join(
    [
        HEADER,
        "2021-01-04,200,200,200,200.00,100.0,1000,0.0,1.0",
        "2021-01-05,220,220,220,220.00,110.0,2000,0.0,1.0",
        "2021-01-06,99,99,99,99.00,99.0,3000,0.0,2.0",
        "2021-01-07,108.9,108.9,108.9,108.90,108.9,4000,0.0,1.0",
        "",
    ]
)


def sample_data() -> Path:
    configured = os.environ.get("TICKDECK_SAMPLE_DATA")
    if configured:
        return Path(configured)
    return (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


def daily_rows(adjusted_closes: list[float], volumes: list[int] | None = None) -> str:
    """A CSV with one row per close, on distinct made-up dates from 2020-01-01 onwards."""
    volumes = volumes or [1000] * len(adjusted_closes)
    lines = [HEADER]
    for offset, (close, volume) in enumerate(zip(adjusted_closes, volumes, strict=True)):
        day = f"{2020 + offset // 300}-{1 + offset % 300 // 25:02d}-{1 + offset % 25:02d}"
        lines.append(f"{day},{close},{close},{close},{close},{close},{volume},0.0,1.0")
    return "\n".join(lines) + "\n"


def test_start_price_is_the_last_raw_close_and_prev_close_the_one_before() -> None:
    profile = calibrate(parse_daily_csv("TEST", FOUR_DAYS, "test.csv"))
    assert profile.start_price == Decimal("108.90")
    assert profile.prev_close == Decimal("99.00")


def test_daily_vol_is_the_sample_stdev_of_adjusted_log_returns() -> None:
    profile = calibrate(parse_daily_csv("TEST", FOUR_DAYS, "test.csv"))
    assert profile.daily_vol == pytest.approx(0.1158573, abs=1e-7)


def test_average_volume_counts_pre_split_days_in_post_split_shares() -> None:
    profile = calibrate(parse_daily_csv("TEST", FOUR_DAYS, "test.csv"))
    assert profile.avg_daily_volume == 3250


def test_spread_and_quote_size_come_from_price_and_dollar_volume() -> None:
    profile = calibrate(parse_daily_csv("TEST", FOUR_DAYS, "test.csv"))
    # 1.5 * (1e9 / (108.9 * 3250)) ** 0.25 = 1.5 * 7.29075 bps; 60 / sqrt(108.9) = 5.75 -> 6 lots.
    assert profile.spread_bps == pytest.approx(10.93612, abs=1e-5)
    assert profile.typical_quote_size == 600


def test_rows_newest_first_are_sorted_oldest_first() -> None:
    header, *rows = FOUR_DAYS.strip().split("\n")
    reversed_text = "\n".join([header, *reversed(rows)])
    history = parse_daily_csv("TEST", reversed_text, "test.csv")
    assert [row.day.isoformat() for row in history.rows] == [
        "2021-01-04",
        "2021-01-05",
        "2021-01-06",
        "2021-01-07",
    ]
    assert calibrate(history).start_price == Decimal("108.90")


def test_daily_vol_uses_only_the_last_vol_window_returns() -> None:
    # A wild early history, then VOL_WINDOW returns alternating exactly +-ln 2:
    # mean 0 over an even count, so the sample variance is 250 * ln2**2 / 249.
    wild = [100.0, 1.0, 500.0, 3.0, 900.0]
    calm = [100.0 * (2 if i % 2 else 1) for i in range(VOL_WINDOW + 1)]
    profile = calibrate(parse_daily_csv("TEST", daily_rows(wild + calm), "test.csv"))
    expected = (VOL_WINDOW * 0.6931471805599453**2 / (VOL_WINDOW - 1)) ** 0.5
    assert profile.daily_vol == pytest.approx(expected, rel=1e-12)


def test_average_volume_uses_only_the_last_volume_window_days() -> None:
    closes = [100.0] * (VOLUME_WINDOW + 10)
    volumes = [10**9] * 10 + [500] * (VOLUME_WINDOW - 1) + [560]
    profile = calibrate(parse_daily_csv("TEST", daily_rows(closes, volumes), "test.csv"))
    assert profile.avg_daily_volume == 501  # (59 * 500 + 560) / 60 = 501


def test_corrupt_rows_are_skipped_and_reported_with_file_and_line() -> None:
    text = "\n".join(
        [
            HEADER,
            "2021-01-04,200,200,200,200.00,100.0,1000,0.0,1.0",
            "2021-01-05,220,220,220,oops,110.0,2000,0.0,1.0",
            "2021-13-45,220,220,220,220.00,110.0,2000,0.0,1.0",
            "2021-01-05,220,220,220,220.00,110.0,2000,0.0",
            "2021-01-05,220,220,220,220.00,110.0,-5,0.0,1.0",
            "2021-01-05,220,220,220,220.00,0,2000,0.0,1.0",
            "2021-01-05,220,220,220,220.00,110.0,2000,0.0,1.0",
            "2021-01-05,1,1,1,1.00,1.0,1,0.0,1.0",
            "2021-01-06,99,99,99,99.00,99.0,3000,0.0,2.0",
            "2021-01-07,108.9,108.9,108.9,108.90,108.9,4000,0.0,1.0",
        ]
    )
    history = parse_daily_csv("TEST", text, "DA-TEST.csv")
    assert [error.where for error in history.errors] == [
        "DA-TEST.csv:3",
        "DA-TEST.csv:4",
        "DA-TEST.csv:5",
        "DA-TEST.csv:6",
        "DA-TEST.csv:7",
        "DA-TEST.csv:9",
    ]
    assert history.skipped == 6
    assert calibrate(history) == calibrate(parse_daily_csv("TEST", FOUR_DAYS, "test.csv"))


def test_a_corrupt_row_error_is_one_sentence_naming_the_value() -> None:
    text = FOUR_DAYS.replace("220.00,110.0", "220.00,abc")
    (error,) = parse_daily_csv("TEST", text, "DA-TEST.csv").errors
    assert str(error) == "DA-TEST.csv:3: adjusted_close 'abc' is not a number"


def test_a_header_without_the_needed_columns_raises_data_error() -> None:
    with pytest.raises(DataError, match="adjusted_close"):
        parse_daily_csv("TEST", "timestamp,close,volume\n2021-01-04,1,1\n", "bad.csv")


def test_fewer_than_three_valid_rows_cannot_be_calibrated() -> None:
    text = "\n".join(FOUR_DAYS.split("\n")[:3])
    with pytest.raises(DataError, match="at least 3"):
        calibrate(parse_daily_csv("TEST", text, "short.csv"))


def test_spread_is_floored_at_one_tick_for_cheap_liquid_names() -> None:
    # $2bn a day would give 1.26 bps, but one cent on $40 is 2.5 bps.
    assert estimate_spread_bps(Decimal("40"), 50_000_000) == pytest.approx(2.5)


def test_spread_of_an_expensive_name_is_a_few_ticks_wide() -> None:
    # $4bn a day: 1.5 * 0.25 ** 0.25 = 1.0607 bps, about 21 cents on $2000.
    assert estimate_spread_bps(Decimal("2000"), 2_000_000) == pytest.approx(1.0606602)


def test_quote_size_is_whole_lots_shrinking_with_price() -> None:
    assert estimate_quote_size(Decimal("3600")) == 100
    assert estimate_quote_size(Decimal("100")) == 600
    assert estimate_quote_size(Decimal("9")) == 900


def test_every_default_watchlist_symbol_is_bundled() -> None:
    assert set(DEFAULT_WATCHLIST) <= set(bundled_symbols())
    assert len(DEFAULT_WATCHLIST) == 20


def test_bundled_profiles_are_sane_large_caps() -> None:
    profiles = load_profiles()
    assert list(profiles) == list(DEFAULT_WATCHLIST)
    for profile in profiles.values():
        assert Decimal(20) < profile.start_price < Decimal(5000)
        assert 0.005 < profile.daily_vol < 0.08
        assert profile.avg_daily_volume > 1_000_000
        assert 0.5 < profile.spread_bps < 5
        assert profile.typical_quote_size in range(100, 1000, 100)


def test_bundled_aapl_starts_at_its_last_close_in_the_file() -> None:
    profile = load_profiles(["aapl"])["AAPL"]
    assert profile.start_price == Decimal("133.5")  # 2021-04-21 close
    assert profile.prev_close == Decimal("133.11")  # 2021-04-20 close


def test_an_unbundled_symbol_raises_input_error_naming_it() -> None:
    with pytest.raises(InputError, match="ZZZZ"):
        load_profiles(["AAPL", "ZZZZ"])


def test_the_bundle_carries_its_mit_licence() -> None:
    licence = resources.files("engine.data") / "bundled" / "pooksoft" / "LICENSE"
    assert licence.read_text(encoding="utf-8").startswith("MIT License")


def test_bundled_rows_are_verbatim_copies_of_the_source_files() -> None:
    source_dir = sample_data() / "pooksoft_sp500" / "daily_adjusted"
    if not source_dir.is_dir():
        pytest.skip(f"sample data not found at {source_dir} (set TICKDECK_SAMPLE_DATA)")
    bundle = resources.files("engine.data") / "bundled" / "pooksoft"
    for entry in bundle.iterdir():
        if not entry.name.endswith(".csv"):
            continue
        copied = entry.read_text(encoding="utf-8").splitlines()
        original = (source_dir / entry.name).read_text(encoding="utf-8").splitlines()
        assert copied[0] == original[0], entry.name
        assert copied[1:] == original[-(len(copied) - 1) :], entry.name
