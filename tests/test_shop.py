"""The shop's pure parts: the packs on sale, the signed invoice payload, where a
reservation draws from."""

from __future__ import annotations

import pytest

from bot.core.quota import Balance, Refusal, Reservation, reserve
from bot.core.shop import (
    INVOICE_TTL,
    MAX_PAYLOAD_BYTES,
    BadPayload,
    Order,
    Pack,
    image_sets,
    parse_packs,
    read,
    sign,
)

KEY = b"k" * 32
NOW = 1_790_000_000


def test_packs_are_credits_stars_pairs() -> None:
    assert parse_packs("100:50, 500:200") == (Pack(100, 50), Pack(500, 200))
    assert parse_packs("") == ()
    assert parse_packs("  ") == ()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("100", "is not credits:stars"),
        ("100:0", "at least 1"),
        ("100:50,100:50", "listed twice"),
        ("a:b", "is not credits:stars"),
        (",".join(f"{n}:1" for n in range(1, 10)), "at most 8"),
    ],
)
def test_bad_packs_are_refused_naming_the_problem(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_packs(raw)


def test_a_signed_payload_reads_back_as_its_order() -> None:
    order = Order(Pack(100, 50), -1001234567890, 42, 7, NOW)
    payload = sign(order, KEY)
    assert read(payload, KEY, now=NOW + 60) == order
    private = Order(Pack(100, 50), 42, 42, None, NOW)
    assert read(sign(private, KEY), KEY, now=NOW) == private


def test_the_largest_payload_fits_telegrams_128_bytes() -> None:
    order = Order(Pack(9_999_999, 999_999), -1_009_999_999_999, 9_999_999_999, 999_999, NOW)
    assert len(sign(order, KEY).encode()) <= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.replace("p1.100.50.", "p1.500.50.", 1),  # more credits, same price
        lambda p: p.replace(".42.", ".43.", 1),  # another buyer
        lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),  # the signature itself
        lambda p: "garbage",
        lambda p: p + "x",
    ],
)
def test_a_changed_payload_is_forged(change: object) -> None:
    payload = sign(Order(Pack(100, 50), 42, 42, None, NOW), KEY)
    assert callable(change)
    assert read(change(payload), KEY, now=NOW) == BadPayload("forged")


def test_another_key_makes_a_forgery() -> None:
    payload = sign(Order(Pack(100, 50), 42, 42, None, NOW), b"another key")
    assert read(payload, KEY, now=NOW) == BadPayload("forged")


def test_an_old_payload_is_stale_unless_already_paid() -> None:
    order = Order(Pack(100, 50), 42, 42, None, NOW)
    payload = sign(order, KEY)
    assert read(payload, KEY, now=NOW + INVOICE_TTL) == order
    assert read(payload, KEY, now=NOW + INVOICE_TTL + 1) == BadPayload("stale")
    assert read(payload, KEY, now=NOW + 10 * INVOICE_TTL, ttl=None) == order


def test_what_a_pack_buys() -> None:
    assert image_sets(100, 5) == 20
    assert image_sets(7, 5) == 1
    assert image_sets(100, 0) == 0


def test_a_reservation_draws_on_the_day_then_granted_then_purchased() -> None:
    balance = Balance(daily_limit=10, daily_spent=7, granted=4, purchased=100)
    assert reserve(balance, 5) == Reservation(5, from_daily=3, from_purchased=0)
    assert reserve(balance, 20) == Reservation(20, from_daily=3, from_purchased=13)
    drawn = reserve(balance, 20)
    assert isinstance(drawn, Reservation)
    assert drawn.from_granted == 4
    assert balance.available == 107
    assert isinstance(reserve(balance, 108), Refusal)
