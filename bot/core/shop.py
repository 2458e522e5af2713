"""Credits sold for Telegram Stars: the packs on sale, and the signed payload an invoice
carries from `/buy` to the payment.

Pure: Telegram's calls live in `bot/telegram/shop.py`, the payments in `storage/payments.py`.

An invoice's payload names the pack (credits and price), the chat the credits go to, the
buyer, the forum topic and when it was made, signed with HMAC-SHA256 (truncated to 128 bits)
under a key only the bot knows. Telegram hands it back untouched at the pre-checkout and in
the payment, so the bot needs no table of open invoices: a payload it did not sign, or one
older than `INVOICE_TTL`, is refused before any money moves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

INVOICE_TTL = 24 * 3600  # seconds an invoice can be paid after /buy made it
MAX_PAYLOAD_BYTES = 128  # Telegram's limit
MAX_PACKS = 8  # buttons under /buy
_PAIR = re.compile(r"\s*(\d{1,7})\s*:\s*(\d{1,6})\s*")
_PAYLOAD = re.compile(
    r"p1\.(\d{1,7})\.(\d{1,6})\.(-?\d{1,16})\.(\d{1,16})\.(\d{1,16})\.(\d{1,12})\."
)


@dataclass(frozen=True, slots=True)
class Pack:
    credits: int
    stars: int


def parse_packs(raw: str) -> tuple[Pack, ...]:
    """`STAR_PACKS`: `credits:stars` pairs, comma-separated (`100:50,500:200`); empty: no
    shop. Raises ValueError naming what is wrong."""
    if not raw.strip():
        return ()
    packs: list[Pack] = []
    for part in raw.split(","):
        match = _PAIR.fullmatch(part)
        if match is None:
            raise ValueError(f"{part.strip()!r} is not credits:stars (e.g. 100:50)")
        pack = Pack(int(match[1]), int(match[2]))
        if pack.credits < 1 or pack.stars < 1:
            raise ValueError(f"{part.strip()!r}: credits and stars must be at least 1")
        if pack in packs:
            raise ValueError(f"{part.strip()!r} is listed twice")
        packs.append(pack)
    if len(packs) > MAX_PACKS:
        raise ValueError(f"at most {MAX_PACKS} packs")
    return tuple(packs)


@dataclass(frozen=True, slots=True)
class Order:
    """What an invoice sells, to whom, for which chat: the payload's content."""

    pack: Pack
    chat_id: int
    buyer_id: int
    thread_id: int | None  # the forum topic /buy was used in
    issued_at: int  # Unix seconds


PayloadProblem = Literal["forged", "stale"]


@dataclass(frozen=True, slots=True)
class BadPayload:
    problem: PayloadProblem


def sign(order: Order, key: bytes) -> str:
    body = (
        f"p1.{order.pack.credits}.{order.pack.stars}.{order.chat_id}.{order.buyer_id}."
        f"{order.thread_id or 0}.{order.issued_at}."
    )
    payload = body + _signature(body, key)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    return payload


def read(
    payload: str, key: bytes, *, now: float, ttl: float | None = INVOICE_TTL
) -> Order | BadPayload:
    """The order a payload names, if the bot signed it (and, with `ttl`, not too long ago)."""
    match = _PAYLOAD.match(payload)
    if match is None or not hmac.compare_digest(
        payload[match.end() :], _signature(payload[: match.end()], key)
    ):
        return BadPayload("forged")
    credits, stars, chat_id, buyer_id, thread_id, issued_at = (int(g) for g in match.groups())
    order = Order(Pack(credits, stars), chat_id, buyer_id, thread_id or None, issued_at)
    if ttl is not None and not now - ttl <= issued_at <= now + 60:
        return BadPayload("stale")
    return order


def image_sets(credits: int, cost_of_a_set: int) -> int:
    """How many /imagine sets `credits` pay for ("100 credits ≈ 20 image sets")."""
    return credits // cost_of_a_set if cost_of_a_set > 0 else 0


def _signature(body: str, key: bytes) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
