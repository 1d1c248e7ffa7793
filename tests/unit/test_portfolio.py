"""Average-cost positions, realized P&L, fees and the cash ledger, against hand-computed numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.core.models import Fill, Side
from engine.portfolio import Portfolio

D = Decimal

# One symbol through adds, a partial close, a flip from long to short, adds to the short,
# a partial cover and a full cover. Starting cash 10,000.00. Worked by hand:
#   1 buy 100 @ 10.00: avg 10.00;                        cash 10000 - 1000 - 1.00   = 8999.00
#   2 buy  50 @ 10.60: avg (1000 + 530) / 150 = 10.20;   cash  8999 - 530 - 0.50    = 8468.50
#   3 sell 60 @ 11.00: realize (11.00 - 10.20) x 60 = 48; cash 8468.50 + 660 - 0.60 = 9127.90
#   4 sell 150 @ 10.00: close 90, realize (10.00 - 10.20) x 90 = -18 -> 30;
#                       open short 60 @ 10.00;           cash 9127.90 + 1500 - 1.50 = 10626.40
#   5 sell 40 @ 9.50:  avg (600 + 380) / 100 = 9.80;     cash 10626.40 + 380 - 0.40 = 11006.00
#   6 buy  30 @ 9.00:  realize (9.80 - 9.00) x 30 = 24 -> 54; cash 11006 - 270 - 0.30 = 10735.70
#   7 buy  70 @ 10.30: realize (9.80 - 10.30) x 70 = -35 -> 19; flat; cash - 721 - 0.70 = 10014.00
# Check: cash moved +14.00 = realized 19.00 - fees 5.00.
LEDGER = [
    # side, qty, price, fee, -> qty, avg_cost, realized, fees, cash
    (Side.BUY, "100", "10.00", "1.00", "100", "10.00", "0", "1.00", "8999.00"),
    (Side.BUY, "50", "10.60", "0.50", "150", "10.20", "0", "1.50", "8468.50"),
    (Side.SELL, "60", "11.00", "0.60", "90", "10.20", "48.00", "2.10", "9127.90"),
    (Side.SELL, "150", "10.00", "1.50", "-60", "10.00", "30.00", "3.60", "10626.40"),
    (Side.SELL, "40", "9.50", "0.40", "-100", "9.80", "30.00", "4.00", "11006.00"),
    (Side.BUY, "30", "9.00", "0.30", "-70", "9.80", "54.00", "4.30", "10735.70"),
    (Side.BUY, "70", "10.30", "0.70", "0", "0", "19.00", "5.00", "10014.00"),
]


def fill(n: int, side: Side, qty: str, price: str, fee: str = "0", symbol: str = "AAPL") -> Fill:
    return Fill(f"x{n}", f"o{n}", symbol, side, D(qty), D(price), n, D(fee))


def test_ledger_matches_hand_computed_positions_pnl_and_cash():
    book = Portfolio(D("10000.00"))
    for n, (side, qty, price, fee, *expected) in enumerate(LEDGER, 1):
        position = book.apply_fill(fill(n, side, qty, price, fee))
        got = [position.qty, position.avg_cost, position.realized_pnl, position.fees, book.cash]
        assert got == [D(value) for value in expected], f"after line {n}"


def test_flat_position_stays_in_the_book_with_its_realized_pnl():
    book = Portfolio(D(1000))
    book.apply_fill(fill(1, Side.BUY, "10", "20.00"))
    book.apply_fill(fill(2, Side.SELL, "10", "21.50"))
    (position,) = book.positions()
    assert (position.qty, position.realized_pnl) == (D(0), D("15.00"))


def test_short_from_flat_opens_at_the_fill_price_and_adds_cash():
    book = Portfolio(D(0))
    position = book.apply_fill(fill(1, Side.SELL, "100", "50.00"))
    assert (position.qty, position.avg_cost, book.cash) == (D(-100), D("50.00"), D("5000.00"))


def test_covering_a_short_above_its_cost_realizes_a_loss():
    book = Portfolio(D(0))
    book.apply_fill(fill(1, Side.SELL, "100", "50.00"))
    position = book.apply_fill(fill(2, Side.BUY, "40", "52.00"))
    assert (position.qty, position.realized_pnl) == (D(-60), D("-80.00"))


def test_round_trip_through_a_repeating_average_realizes_exactly():
    # avg cost (1000 + 500.50) / 150 = 10.00333...; selling in two lots must still realize
    # exactly proceeds - cost = 1503.00 - 1500.50 = 2.50.
    book = Portfolio(D(0))
    book.apply_fill(fill(1, Side.BUY, "100", "10.00"))
    book.apply_fill(fill(2, Side.BUY, "50", "10.01"))
    book.apply_fill(fill(3, Side.SELL, "100", "10.02"))
    position = book.apply_fill(fill(4, Side.SELL, "50", "10.02"))
    assert (position.qty, position.realized_pnl, book.cash) == (D(0), D("2.50"), D("2.50"))


def test_partial_close_at_a_repeating_average_keeps_the_ledger_identity_exact():
    book = Portfolio(D(5000))
    book.apply_fill(fill(1, Side.BUY, "3", "10.00", "0.01"))
    book.apply_fill(fill(2, Side.BUY, "4", "10.01", "0.01"))
    book.apply_fill(fill(3, Side.SELL, "2", "10.05", "0.01"))
    position = book.position("AAPL")
    assert position is not None
    left = book.cash + book.cost_basis("AAPL")
    assert left == D(5000) + position.realized_pnl - position.fees


def test_avg_cost_times_qty_is_the_cost_basis_to_within_rounding():
    book = Portfolio(D(0))
    book.apply_fill(fill(1, Side.BUY, "3", "10.00"))
    book.apply_fill(fill(2, Side.BUY, "4", "10.01"))
    book.apply_fill(fill(3, Side.SELL, "2", "10.05"))
    position = book.position("AAPL")
    assert position is not None
    assert abs(position.qty * position.avg_cost - book.cost_basis("AAPL")) < D("1e-9")


def test_equity_is_cash_plus_marked_positions():
    book = Portfolio(D(10000))
    book.apply_fill(fill(1, Side.BUY, "10", "100.00"))
    book.apply_fill(fill(2, Side.SELL, "5", "40.00", symbol="MSFT"))
    # cash 10000 - 1000 + 200 = 9200; 10 x 110 - 5 x 42 = 890
    assert book.equity({"AAPL": D("110.00"), "MSFT": D("42.00")}) == D("10090.00")


def test_gross_and_net_exposure_count_shorts_by_size_and_by_sign():
    book = Portfolio(D(10000))
    book.apply_fill(fill(1, Side.BUY, "10", "100.00"))
    book.apply_fill(fill(2, Side.SELL, "5", "40.00", symbol="MSFT"))
    marks = {"AAPL": D("110.00"), "MSFT": D("42.00")}
    assert (book.gross_exposure(marks), book.net_exposure(marks)) == (D("1310.00"), D("890.00"))


def test_marks_fall_back_to_the_last_mark_then_to_avg_cost():
    book = Portfolio(D(0))
    book.apply_fill(fill(1, Side.BUY, "10", "100.00"))
    book.apply_fill(fill(2, Side.BUY, "10", "20.00", symbol="MSFT"))
    book.mark("AAPL", D("101.00"))
    assert book.market_value() == D("1010.00") + D("200.00")


def test_day_pnl_is_equity_change_since_the_session_start_net_of_fees():
    book = Portfolio(D(10000))
    book.start_session()
    book.apply_fill(fill(1, Side.BUY, "10", "100.00", "1.00"))
    assert book.day_pnl({"AAPL": D("103.00")}) == D("29.00")


def test_realized_pnl_and_fees_sum_over_symbols():
    book = Portfolio(D(0))
    book.apply_fill(fill(1, Side.BUY, "10", "100.00", "1.00"))
    book.apply_fill(fill(2, Side.SELL, "10", "101.00", "1.00"))
    book.apply_fill(fill(3, Side.SELL, "10", "50.00", "0.50", symbol="MSFT"))
    book.apply_fill(fill(4, Side.BUY, "10", "49.00", "0.50", symbol="MSFT"))
    assert (book.realized_pnl(), book.fees()) == (D("20.00"), D("3.00"))


@pytest.mark.parametrize(
    ("side", "price", "realized"),
    [(Side.SELL, "12.00", "20.00"), (Side.SELL, "9.00", "-10.00")],
)
def test_reducing_a_long_realizes_price_minus_avg_cost_times_qty(side, price, realized):
    book = Portfolio(D(0))
    book.apply_fill(fill(1, Side.BUY, "20", "10.00"))
    assert book.apply_fill(fill(2, side, "10", price)).realized_pnl == D(realized)
