"""Properties of the order manager and the book under random broker updates and fills."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.models import Fill, OrderStatus, OrderType, Side
from engine.oms import is_legal_transition
from engine.portfolio import Portfolio
from tests.unit.test_oms import Desk, make_desk

D = Decimal
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# One broker message: which order, which status, what the broker says is filled, and maybe
# an execution (a fresh id, or a repeat of one already sent).
update_steps = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.sampled_from(list(OrderStatus)),
        st.integers(0, 120),
        st.one_of(
            st.none(),
            st.tuples(st.integers(1, 60), st.integers(18_700, 18_800), st.booleans()),
        ),
    ),
    max_size=25,
)


def started_desk() -> Desk:
    desk = make_desk()
    desk.buy("100", type=OrderType.LIMIT, limit_price=D("187.50"))
    desk.sell("100", symbol="MSFT", type=OrderType.LIMIT, limit_price=D("400.00"))
    return desk


@SETTINGS
@given(update_steps)
def test_random_updates_keep_every_order_in_a_legal_state_and_the_book_consistent(steps):
    desk = started_desk()
    orders = desk.oms.orders()
    sent: list[Fill] = []
    applied: dict[str, Fill] = {}
    for n, (which, status, filled, execution) in enumerate(steps):
        order = orders[which]
        before_status, before_filled = order.status, order.filled_qty
        fill = None
        if execution is not None:
            qty, cents, repeat = execution
            if repeat and sent:
                fill = sent[n % len(sent)]
            else:
                fill = Fill(
                    f"exec-{n}",
                    order.id,
                    order.symbol,
                    order.side,
                    D(qty),
                    D(cents) / 100,
                    desk.clock.now_ns(),
                    D("0.01"),
                )
                sent.append(fill)
            applied.setdefault(fill.id, fill)
        desk.emit(order.id, status, filled=str(filled), fill=fill)

        if is_legal_transition(before_status, status):
            assert order.status is status
        else:
            assert order.status is before_status
        assert before_filled <= order.filled_qty <= order.qty
        for symbol in ("AAPL", "MSFT"):
            signed = sum(
                (f.qty * f.side.sign for f in applied.values() if f.symbol == symbol), D(0)
            )
            assert desk.oms.position_qty(symbol) == signed
        book = desk.oms.portfolio
        held = sum((book.cost_basis(symbol) for symbol in ("AAPL", "MSFT")), D(0))
        assert book.cash + held == book.starting_cash + book.realized_pnl() - book.fees()


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 500),
            st.integers(100, 100_000),
            st.integers(0, 300),
        ),
        max_size=40,
    )
)
def test_cash_plus_cost_basis_moves_only_by_realized_pnl_less_fees(fills):
    start = D("50000.00")
    book = Portfolio(start)
    for n, (side, qty, cents, fee_cents) in enumerate(fills):
        fill = Fill(f"x{n}", "o", "AAPL", side, D(qty), D(cents) / 100, n, D(fee_cents) / 100)
        position = book.apply_fill(fill)
        assert book.cash + book.cost_basis("AAPL") == (
            start + position.realized_pnl - position.fees
        )
        # avg_cost is the basis per share, rounded to 28 significant digits.
        assert abs(position.qty * position.avg_cost - book.cost_basis("AAPL")) < D("1e-15")


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 500)),
        max_size=40,
    )
)
def test_the_position_is_the_signed_sum_of_its_fills(fills):
    book = Portfolio(D(0))
    for n, (side, qty) in enumerate(fills):
        book.apply_fill(Fill(f"x{n}", "o", "AAPL", side, D(qty), D("10.01"), n))
    assert book.qty("AAPL") == sum((D(q) * s.sign for s, q in fills), D(0))
