"""Payments in Telegram Stars: recorded once per charge id, with their credits in the same
transaction; refunds taken back once."""

from __future__ import annotations

from dataclasses import dataclass, fields

from bot.core.quota import utc_day
from storage import ledger
from storage.database import Database, Row, Session, chat_lock


@dataclass(frozen=True, slots=True)
class Payment:
    charge_id: str
    chat_id: int
    user_id: int
    buyer_name: str
    lang: str
    message_thread_id: int | None
    credits: int
    stars: int
    received_at: float
    receipt_message_id: int | None
    refunded_at: float | None
    refunded_credits: int | None

    @classmethod
    def from_row(cls, row: Row) -> Payment:
        """The columns are the fields, by name."""
        return cls(*(row[field.name] for field in fields(cls)))


@dataclass(frozen=True, slots=True)
class NewPayment:
    charge_id: str
    chat_id: int
    user_id: int
    buyer_name: str
    lang: str
    message_thread_id: int | None
    credits: int
    stars: int


@dataclass(frozen=True, slots=True)
class Refunded:
    taken: int  # credits taken back: the payment's, as far as the chat had not spent them
    first: bool  # False: it had been refunded before, and `taken` is what that took


@dataclass(frozen=True, slots=True)
class StarsDay:
    day: str
    payments: int
    stars: int
    refunded: int  # stars of that day's payments refunded since


class PaymentRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, new: NewPayment, *, now: float) -> tuple[Payment, bool]:
        # `now`: when Telegram took the Stars (a payment found late counts on its own day).
        """Record a payment and add its credits, in one transaction, once per charge id.
        Returns the payment as recorded and whether this call recorded it."""
        day = utc_day(now)
        async with self._db.transaction() as connection:
            inserted = await connection.execute(
                """
                INSERT INTO payments (charge_id, chat_id, user_id, buyer_name, lang,
                                      message_thread_id, credits, stars, received_at, day)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                (
                    new.charge_id,
                    new.chat_id,
                    new.user_id,
                    new.buyer_name,
                    new.lang,
                    new.message_thread_id,
                    new.credits,
                    new.stars,
                    now,
                    day,
                ),
            )
            first = inserted == 1
            if first:
                await ledger.record_payment(
                    connection,
                    "purchase",
                    chat_id=new.chat_id,
                    user_id=new.user_id,
                    charge_id=new.charge_id,
                    amount=new.credits,
                    day=day,
                    now=now,
                )
            payment = await _payment(connection, new.charge_id)
        assert payment is not None
        return payment, first

    async def get(self, charge_id: str) -> Payment | None:
        row = await self._db.fetch_one(_BY_CHARGE, (charge_id,))
        return Payment.from_row(row) if row else None

    async def known(self, charge_ids: list[str]) -> set[str]:
        """Which of these charge ids are recorded."""
        if not charge_ids:
            return set()
        marks = ", ".join("?" for _ in charge_ids)
        rows = await self._db.fetch_all(
            f"SELECT charge_id FROM payments WHERE charge_id IN ({marks})", charge_ids
        )
        return {row[0] for row in rows}

    async def of_user(self, user_id: int, limit: int = 5) -> list[str]:
        """The charge ids of a user's latest payments, newest first."""
        rows = await self._db.fetch_all(
            "SELECT charge_id FROM payments WHERE user_id = ? ORDER BY received_at DESC LIMIT ?",
            (user_id, limit),
        )
        return [row[0] for row in rows]

    async def without_receipt(self) -> list[Payment]:
        rows = await self._db.fetch_all(
            "SELECT * FROM payments WHERE receipt_message_id IS NULL ORDER BY received_at"
        )
        return [Payment.from_row(row) for row in rows]

    async def note_receipt(self, charge_id: str, message_id: int) -> None:
        await self._db.execute(
            "UPDATE payments SET receipt_message_id = ? WHERE charge_id = ?",
            (message_id, charge_id),
        )

    async def buyers(self, chat_id: int) -> list[tuple[str, int]]:
        """Who bought credits for this chat, and how many (refunds left out), most first."""
        rows = await self._db.fetch_all(
            """
            SELECT MAX(buyer_name), CAST(SUM(CASE WHEN refunded_at IS NULL THEN credits ELSE 0 END)
                                         AS BIGINT) AS bought
            FROM payments WHERE chat_id = ? GROUP BY user_id
            HAVING SUM(CASE WHEN refunded_at IS NULL THEN credits ELSE 0 END) > 0
            ORDER BY bought DESC, MIN(received_at) LIMIT 5
            """,
            (chat_id,),
        )
        return [(row[0], row[1]) for row in rows]

    async def take_back(self, charge_id: str, *, now: float) -> Refunded | None:
        """Telegram refunded the payment: take its credits back from the chat, as far as
        they are unspent, once. None if no such payment was recorded."""
        day = utc_day(now)
        recorded = await _payment(self._db, charge_id)
        if recorded is None:
            return None
        # Decided under the chat's lock: no reservation or refund of it in between.
        async with self._db.transaction(locks=[chat_lock(recorded.chat_id)]) as connection:
            payment = await _payment(connection, charge_id)
            if payment is None:
                return None
            if payment.refunded_at is not None:
                return Refunded(payment.refunded_credits or 0, first=False)
            current = await ledger.balance(
                connection, chat_id=payment.chat_id, day=day, daily_limit=0
            )
            # Unspent: what is left, and what tasks not yet delivered hold (should they
            # fail, it would come back to the chat; a purchase refunded meanwhile must not).
            held = await connection.fetch_all(
                """
                SELECT CAST(COALESCE(SUM(r.from_purchased), 0) AS BIGINT) FROM ledger AS r
                WHERE r.chat_id = ? AND r.kind = 'reserve' AND NOT EXISTS (
                    SELECT 1 FROM ledger AS s
                    WHERE s.task_id = r.task_id AND s.kind IN ('commit', 'refund'))
                """,
                (payment.chat_id,),
            )
            (held_by_tasks,), *_ = held
            taken = max(0, min(payment.credits, current.purchased + held_by_tasks))
            await ledger.record_payment(
                connection,
                "unpurchase",
                chat_id=payment.chat_id,
                user_id=payment.user_id,
                charge_id=charge_id,
                amount=taken,
                day=day,
                now=now,
            )
            await connection.execute(
                "UPDATE payments SET refunded_at = ?, refunded_credits = ? WHERE charge_id = ?",
                (now, taken, charge_id),
            )
        return Refunded(taken, first=True)

    async def scan_offset(self) -> int:
        """Where the last look through the bot's Star transactions ended."""
        row = await self._db.fetch_one("SELECT next_offset FROM star_scan WHERE id = 1")
        return int(row[0]) if row else 0

    async def note_scan_offset(self, offset: int) -> None:
        await self._db.execute(
            "INSERT INTO star_scan (id, next_offset) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET next_offset = excluded.next_offset",
            (offset,),
        )

    async def stars_per_day(self, since_day: str) -> list[StarsDay]:
        rows = await self._db.fetch_all(
            """
            SELECT day, COUNT(*), CAST(SUM(stars) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN refunded_at IS NOT NULL THEN stars END), 0)
                        AS BIGINT)
            FROM payments WHERE day >= ? GROUP BY day ORDER BY day
            """,
            (since_day,),
        )
        return [StarsDay(*row) for row in rows]


_BY_CHARGE = "SELECT * FROM payments WHERE charge_id = ?"


async def _payment(connection: Session, charge_id: str) -> Payment | None:
    """The payment, read inside an open transaction."""
    rows = await connection.fetch_all(_BY_CHARGE, (charge_id,))
    return next((Payment.from_row(row) for row in rows), None)
