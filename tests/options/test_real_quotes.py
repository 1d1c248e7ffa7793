"""Implied vols from real quotes: the CBOE SPX chain of 2011-01-24 (pyql's example data) and
Lean's SPX index option minute quotes of 2021-01-04.

SPX options are European, so put-call parity holds exactly: C - P = e^{-rT} (F - K). The rate
r is stated (the Fed H.15 short rates of the day, interpolated in T and used as continuous
rates: the difference is below a basis point); the forward F of each expiry comes from the
quotes themselves by parity, and the dividend yield q = r - ln(F/S)/T follows. That keeps the
vols free of any dividend assumption, which matters more than r for SPX.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from engine.core.clock import NEW_YORK
from engine.options.bsm import bs_greeks, bs_price
from engine.options.iv import implied_vol
from engine.options.svi import fit_svi

SPOT = 1290.59
TRADE_TIME = datetime(2011, 1, 24, 14, 3, tzinfo=NEW_YORK)
YEAR_SECONDS = 365 * 86_400
NEAR = 0.08  # |ln(K/S)| of the strikes that set the forward: liquid, both sides quoted
# "11 Mar 1290.00 (SPX1119C1290-E)": root, YY, DD, month letter (A-L calls, M-X puts), strike.
_DESC = re.compile(r"\(([A-Z]+)(\d{2})(\d{2})([A-X])(\d+(?:\.\d+)?)-E\)")
# H.15 columns: 1-month, 3-month and 6-month eurodollar deposits, 1- to 3-year swaps.
_H15_TENORS = {9: 1 / 12, 10: 0.25, 11: 0.5, 1: 1.0, 2: 2.0, 3: 3.0}


@dataclass(slots=True, frozen=True)
class Expiry:
    """One SPX expiry's strikes with both sides, and the parity-implied forward."""

    expiry: date
    t: float
    r: float
    strike: np.ndarray
    call_bid: np.ndarray
    call_ask: np.ndarray
    put_bid: np.ndarray
    put_ask: np.ndarray

    @property
    def call_mid(self) -> np.ndarray:
        return 0.5 * (self.call_bid + self.call_ask)

    @property
    def put_mid(self) -> np.ndarray:
        return 0.5 * (self.put_bid + self.put_ask)

    @property
    def spread(self) -> np.ndarray:
        return (self.call_ask - self.call_bid) + (self.put_ask - self.put_bid)

    @property
    def near(self) -> np.ndarray:
        return np.abs(np.log(self.strike / SPOT)) < NEAR

    @property
    def strike_forwards(self) -> np.ndarray:
        """F implied by parity at each strike: K + e^{rT} (C - P)."""
        return self.strike + math.exp(self.r * self.t) * (self.call_mid - self.put_mid)

    @property
    def forward(self) -> float:
        """The spread-weighted mean of the near strikes' parity forwards."""
        weights = 1.0 / self.spread[self.near]
        return float(np.sum(self.strike_forwards[self.near] * weights) / np.sum(weights))

    @property
    def q(self) -> float:
        return self.r - math.log(self.forward / SPOT) / self.t

    def otm_vols(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(k, iv, mid, is_call) of the out-of-the-money side at each strike (puts below F)."""
        is_call = self.strike >= self.forward
        mid = np.where(is_call, self.call_mid, self.put_mid)
        iv = implied_vol(mid, SPOT, self.strike, self.t, self.r, self.q, is_call)
        return np.log(self.strike / self.forward), iv, mid, is_call


@pytest.fixture(scope="module")
def pyql_dir(sample_data: Path) -> Path:
    folder = sample_data / "pyql"
    if not (folder / "SPX-Options-24jan2011.csv").is_file():
        pytest.skip(f"the pyql SPX chain is not at {folder}")
    return folder


def _h15_rate(path: Path, day: date, t: float) -> float:
    """The day's H.15 short rates, linearly interpolated in T (flat beyond the ends)."""
    for fields in csv.reader(path.read_text().splitlines()):
        if fields and fields[0] == day.isoformat():
            tenors = sorted((years, float(fields[col]) / 100) for col, years in _H15_TENORS.items())
            xs, ys = zip(*tenors, strict=True)
            return float(np.interp(t, xs, ys))
    raise AssertionError(f"H.15 has no row for {day}")


@pytest.fixture(scope="module")
def chain(pyql_dir: Path) -> list[Expiry]:
    """The SPX (AM-settled, Saturday-dated) expiries with at least five near two-sided pairs."""
    rows: dict[date, list[tuple[float, ...]]] = {}
    text = (pyql_dir / "SPX-Options-24jan2011.csv").read_text()
    for fields in csv.reader(text.splitlines()):
        call = _DESC.search(fields[0]) if len(fields) >= 14 else None
        if call is None or call.group(1) != "SPX":
            continue
        _, yy, dd, letter, strike = call.groups()
        expiry = date(2000 + int(yy), ord(letter) - ord("A") + 1, int(dd))
        try:
            quotes = tuple(float(fields[i]) for i in (3, 4, 10, 11))
        except ValueError:
            continue
        call_bid, call_ask, put_bid, put_ask = quotes
        two_sided = min(quotes) > 0 and call_ask > call_bid and put_ask > put_bid
        if expiry.weekday() == 5 and two_sided:
            rows.setdefault(expiry, []).append((float(strike), *quotes))
    expiries = []
    for expiry, found in sorted(rows.items()):
        # Settlement is the Friday's opening print (the Saturday is the old OCC expiry date).
        settle = datetime.combine(expiry - timedelta(days=1), datetime.min.time(), NEW_YORK)
        t = (settle + timedelta(hours=9, minutes=30) - TRADE_TIME).total_seconds() / YEAR_SECONDS
        a = np.array(sorted(found))
        r = _h15_rate(pyql_dir / "frb_h15.csv", TRADE_TIME.date(), t)
        item = Expiry(expiry, t, r, a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4])
        if item.near.sum() >= 5:
            expiries.append(item)
    return expiries


def test_the_chain_has_the_listed_spx_expiries(chain: list[Expiry]) -> None:
    assert [e.expiry for e in chain][:3] == [
        date(2011, 2, 19),
        date(2011, 3, 19),
        date(2011, 4, 16),
    ]
    assert len(chain) >= 8


def test_put_call_parity_forwards_agree_across_strikes_within_the_spread(
    chain: list[Expiry],
) -> None:
    # Each mid is within half its spread of a fair value, so a strike's parity forward can
    # miss the true one by at most e^{rT} (call spread + put spread) / 2.
    for e in chain:
        band = math.exp(e.r * e.t) * e.spread[e.near] / 2
        inside = np.abs(e.strike_forwards[e.near] - e.forward) <= band
        assert inside.mean() >= 0.9, e.expiry


def test_implied_dividend_yields_are_those_of_the_sp500(chain: list[Expiry]) -> None:
    # The S&P 500 yielded about 1.8% in January 2011; short expiries see lumpy dividends.
    yields = [e.q for e in chain if e.t > 0.25]
    assert all(0.01 < q < 0.03 for q in yields)
    forwards = [e.forward for e in chain]
    assert forwards == sorted(forwards, reverse=True)  # q > r: forwards fall with T


def test_near_the_money_vols_are_finite_and_sane(chain: list[Expiry]) -> None:
    for e in chain:
        k, iv, _, _ = e.otm_vols()
        near = np.abs(k) < 0.1
        assert np.all(np.isfinite(iv[near])), e.expiry
        assert np.all((iv[near] > 0.08) & (iv[near] < 0.4)), e.expiry


def test_smiles_have_put_skew(chain: list[Expiry]) -> None:
    for e in chain[:6]:
        k, iv, _, _ = e.otm_vols()
        below = iv[(k > -0.12) & (k < -0.08)]
        above = iv[(k > 0.03) & (k < 0.07)]
        assert np.nanmean(below) > np.nanmean(above) + 0.02, e.expiry


def test_call_and_put_vols_agree_within_the_quoted_spread(chain: list[Expiry]) -> None:
    # Parity makes both sides carry one vol; quotes leave (spread / 2) / vega of room.
    for e in chain:
        n = e.near
        call_iv = implied_vol(e.call_mid[n], SPOT, e.strike[n], e.t, e.r, e.q, True)
        put_iv = implied_vol(e.put_mid[n], SPOT, e.strike[n], e.t, e.r, e.q, False)
        vega = bs_greeks(SPOT, e.strike[n], e.t, e.r, e.q, call_iv, True).vega
        room = e.spread[n] / 2 / vega
        assert (np.abs(call_iv - put_iv) <= room).mean() >= 0.9, e.expiry


def test_price_to_vol_to_price_round_trips(chain: list[Expiry]) -> None:
    for e in chain:
        _, iv, mid, is_call = e.otm_vols()
        ok = np.isfinite(iv)
        repriced = bs_price(SPOT, e.strike[ok], e.t, e.r, e.q, iv[ok], is_call[ok])
        assert np.allclose(repriced, mid[ok], rtol=1e-9, atol=1e-9), e.expiry


def test_svi_fits_each_expiry_smile_within_a_vol_point(chain: list[Expiry]) -> None:
    for e in chain:
        k, iv, _, _ = e.otm_vols()
        use = np.isfinite(iv) & (np.abs(k) < 0.3)
        fit = fit_svi(k[use], iv[use] ** 2 * e.t, e.t)
        assert fit.rmse < 0.01, (e.expiry, fit.rmse)


# -- pyql's own IVs: another implementation's output on the same quotes ----------------------


@pytest.fixture(scope="module")
def pyql_rows(pyql_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((pyql_dir / "df_options_SPX_24jan2011.csv").open()))


def _pyql_vol(row: dict[str, str], price: float) -> tuple[float, float]:
    """Our vol for ``price`` on pyql's own inputs (S, K, TTM, iRate, iDiv), and its vega."""
    args = (
        float(row["Spot"]),
        float(row["Strike"]),
        float(row["TTM"]),
        float(row["iRate"]),
        float(row["iDiv"]),
    )
    is_call = row["Type"] == "C"
    vol = float(implied_vol(price, *args, is_call))
    return vol, float(bs_greeks(*args, vol, is_call).vega)


# pyql's solver stops once its vol reprices the quote to within half a cent (the largest
# miss in the file is 0.005), so two correct implementations can differ by up to
# 0.005 / vega in vol: that, with a little margin, is the tolerance.
PYQL_PRICE_TOL = 0.006


def test_put_vols_match_pyql_at_bid_and_ask(pyql_rows: list[dict[str, str]]) -> None:
    puts = [row for row in pyql_rows if row["Type"] == "P"]
    assert len(puts) > 60
    for row in puts:
        for price, theirs in ((row["PBid"], row["IVBid"]), (row["PAsk"], row["IVAsk"])):
            ours, vega = _pyql_vol(row, float(price))
            assert abs(ours - float(theirs)) <= PYQL_PRICE_TOL / vega, row


def test_call_vols_match_pyql_at_the_bid(pyql_rows: list[dict[str, str]]) -> None:
    # pyql's example fills a call's IVAsk and IVMid with its bid vol (a defect of that script),
    # so only the bid is comparable; IVAsk equals IVBid on every call row.
    calls = [row for row in pyql_rows if row["Type"] == "C"]
    assert len(calls) > 60
    for row in calls:
        ours, vega = _pyql_vol(row, float(row["PBid"]))
        assert abs(ours - float(row["IVBid"])) <= PYQL_PRICE_TOL / vega, row
        assert row["IVAsk"] == row["IVBid"]


def test_pyql_rows_dated_march_16_are_the_april_contracts(
    pyql_rows: list[dict[str, str]], chain: list[Expiry]
) -> None:
    # Why its own TTM is used above: pyql's "2011-03-16" puts carry the April (SPX1116P) quotes.
    april = next(e for e in chain if e.expiry == date(2011, 4, 16))
    row = next(r for r in pyql_rows if r["Type"] == "P" and r["Strike"] == "1210.0")
    at = int(np.flatnonzero(april.strike == 1210.0)[0])
    assert row["dtExpiry"] == "2011-03-16"
    assert (float(row["PBid"]), float(row["PAsk"])) == (april.put_bid[at], april.put_ask[at])


# -- Lean SPX index options, 2021-01-04 -------------------------------------------------------

LEAN_DAY = "20210104"
LEAN_RATE = 0.0009  # 1-month T-bill, early January 2021
LEAN_EXPIRY = datetime(2021, 1, 15, 9, 30, tzinfo=NEW_YORK)  # AM-settled monthly
CT_TO_ET_MS = 3_600_000  # index bars are stamped in Chicago time, option bars in New York


def _lean_option_quotes(root: Path) -> dict[tuple[str, float], dict[int, tuple[float, float]]]:
    """(right, strike) -> {ms since midnight ET: (bid close, ask close)}; prices are 1/10,000 $."""
    path = root / "indexoption/usa/minute/spx" / f"{LEAN_DAY}_quote_european.zip"
    quotes = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            parts = name.removesuffix(".csv").split("_")
            right, strike = parts[5], int(parts[6]) / 10_000
            bars = {}
            for fields in csv.reader(io.TextIOWrapper(archive.open(name))):
                bid = float(fields[4]) / 10_000 if fields[4] else math.nan
                ask = float(fields[9]) / 10_000 if fields[9] else math.nan
                bars[int(fields[0])] = (bid, ask)
            quotes[(right, strike)] = bars
    return quotes


def _lean_index(root: Path) -> dict[int, float]:
    path = root / "index/usa/minute/spx" / f"{LEAN_DAY}_trade.zip"
    with zipfile.ZipFile(path) as archive:
        (name,) = archive.namelist()
        rows = csv.reader(io.TextIOWrapper(archive.open(name)))
        return {int(f[0]) + CT_TO_ET_MS: float(f[4]) for f in rows}


@pytest.fixture(scope="module")
def lean_minutes(sample_data: Path) -> list[tuple[float, float, float, dict]]:
    """Per minute with an index print: (S, T, q from the 3200 parity pair, quotes)."""
    root = sample_data / "lean" / "Data"
    if not (root / "indexoption/usa/minute/spx").is_dir():
        pytest.skip(f"Lean SPX index options are not under {root}")
    quotes = _lean_option_quotes(root)
    index = _lean_index(root)
    midnight = datetime(2021, 1, 4, tzinfo=NEW_YORK)
    minutes = []
    for ms, spot in sorted(index.items()):
        call, put = quotes[("call", 3200.0)].get(ms), quotes[("put", 3200.0)].get(ms)
        if call is None or put is None or not all(np.isfinite(call + put)):
            continue
        t = (LEAN_EXPIRY - midnight - timedelta(milliseconds=ms)).total_seconds() / YEAR_SECONDS
        forward = 3200.0 + math.exp(LEAN_RATE * t) * (sum(call) / 2 - sum(put) / 2)
        q = LEAN_RATE - math.log(forward / spot) / t
        minutes.append((spot, t, q, {key: bars.get(ms) for key, bars in quotes.items()}))
    return minutes


def test_lean_minutes_cover_the_session(lean_minutes: list) -> None:
    assert len(lean_minutes) > 350


def test_lean_near_the_money_vols_are_finite_and_sane(lean_minutes: list) -> None:
    vols = []
    for spot, t, q, quotes in lean_minutes:
        for strike in (3700.0, 3800.0):
            bid, ask = quotes[("call", strike)] or (math.nan, math.nan)
            if abs(math.log(strike / spot)) < 0.05 and bid > 0 and ask > bid:
                vols.append(
                    float(implied_vol((bid + ask) / 2, spot, strike, t, LEAN_RATE, q, True))
                )
    vols = np.array(vols)
    assert vols.size > 500
    assert np.isfinite(vols).mean() >= 0.99
    # VIX closed near 27 that day; two-week SPX vols near the money sit in the teens to 20s.
    assert np.all((vols[np.isfinite(vols)] > 0.1) & (vols[np.isfinite(vols)] < 0.4))


def test_lean_otm_put_carries_more_vol_than_atm_call(lean_minutes: list) -> None:
    spot, t, q, quotes = lean_minutes[-1]
    put_bid, put_ask = quotes[("put", 3200.0)]
    call_bid, call_ask = quotes[("call", 3700.0)]
    put_iv = implied_vol((put_bid + put_ask) / 2, spot, 3200.0, t, LEAN_RATE, q, False)
    atm_iv = implied_vol((call_bid + call_ask) / 2, spot, 3700.0, t, LEAN_RATE, q, True)
    assert put_iv > atm_iv + 0.1
