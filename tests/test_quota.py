"""Credit arithmetic, on its own: where a reservation draws from, and why one is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.lifecycle import TaskKind
from bot.core.quota import Balance, Costs, Refusal, Reservation, next_renewal, reserve, utc_day


def test_a_reservation_draws_on_the_day_first_then_on_granted_credits() -> None:
    balance = Balance(daily_limit=20, daily_spent=17, granted=10)
    assert (balance.daily_left, balance.available) == (3, 13)
    reservation = reserve(balance, 5)
    assert reservation == Reservation(amount=5, from_daily=3)
    assert isinstance(reservation, Reservation)
    assert reservation.from_granted == 2


def test_a_chat_out_of_credits_is_refused_with_its_balance() -> None:
    balance = Balance(daily_limit=20, daily_spent=20, granted=4)
    assert reserve(balance, 5) == Refusal("chat", 5, balance)
    assert reserve(balance, 4) == Reservation(4, 0)  # exactly what is left


def test_a_members_cap_refuses_before_the_chats_balance() -> None:
    balance = Balance(daily_limit=100, daily_spent=0, granted=0, user_cap=10, user_spent=6)
    assert balance.user_left == 4
    assert reserve(balance, 5) == Refusal("user", 5, balance)
    assert isinstance(reserve(balance, 4), Reservation)
    assert Balance(daily_limit=1, daily_spent=0, granted=0).user_left is None  # no cap


def test_spending_past_the_limit_never_shows_as_negative() -> None:
    balance = Balance(daily_limit=10, daily_spent=15, granted=0, user_cap=5, user_spent=9)
    assert (balance.daily_left, balance.available, balance.user_left) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kind", "cost"),
    [
        (TaskKind.TEXT_TO_IMAGE, 1),
        (TaskKind.IMAGE_TO_VIDEO, 2),
        (TaskKind.TEXT_TO_VIDEO, 3),
        (TaskKind.UPSCALE, 4),
    ],
)
def test_each_kind_has_its_own_cost(kind: TaskKind, cost: int) -> None:
    assert Costs(1, 2, 3, 4).of(kind) == cost


def test_the_day_and_its_renewal_are_utc() -> None:
    late = datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC).timestamp()
    assert utc_day(late) == "2026-11-21"
    assert utc_day(late + 1) == "2026-11-22"
    assert next_renewal(late) == late + 1
    assert next_renewal(late + 1) == late + 1 + 86400  # midnight itself: the next one
