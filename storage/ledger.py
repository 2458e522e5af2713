"""The credit ledger: append-only rows, balances derived from them.

Functions take the connection of an open transaction (`Database.transaction()`), so a
reservation is written in the same transaction as the task it pays for, and a refund or
commit in the same transaction as the state move that causes it.
"""

from __future__ import annotations

from typing import Literal

from bot.core.quota import Balance
from storage.database import Database, Session


async def balance(
    connection: Session,
    *,
    chat_id: int,
    day: str,
    daily_limit: int,
    user_id: int | None = None,
    user_cap: int | None = None,
) -> Balance:
    # (CAST: PostgreSQL sums integers to numeric.)
    rows = await connection.fetch_all(
        """
        SELECT
          CAST(COALESCE(SUM(CASE WHEN day = :day AND kind = 'reserve' THEN from_daily
                            WHEN day = :day AND kind = 'refund' THEN -from_daily END), 0)
               AS BIGINT),
          CAST(COALESCE(SUM(CASE kind WHEN 'grant' THEN amount
                                 WHEN 'reserve' THEN from_daily + from_purchased - amount
                                 WHEN 'refund' THEN amount - from_daily - from_purchased END), 0)
               AS BIGINT),
          CAST(COALESCE(SUM(CASE kind WHEN 'purchase' THEN amount
                                 WHEN 'unpurchase' THEN -amount
                                 WHEN 'reserve' THEN -from_purchased
                                 WHEN 'refund' THEN from_purchased END), 0) AS BIGINT),
          CAST(COALESCE(SUM(CASE WHEN day = :day AND user_id = :user AND kind = 'reserve'
                                 THEN amount
                                 WHEN day = :day AND user_id = :user AND kind = 'refund'
                                 THEN -amount END), 0) AS BIGINT)
        FROM ledger WHERE chat_id = :chat AND kind != 'commit'
        """,
        # No member's share asked for: a user id no row has.
        {"chat": chat_id, "day": day, "user": user_id if user_id is not None else 0},
    )
    (daily_spent, granted, purchased, user_spent), *_ = rows
    return Balance(
        daily_limit=daily_limit,
        daily_spent=daily_spent,
        granted=granted,
        purchased=purchased,
        user_cap=user_cap,
        user_spent=user_spent,
    )


async def record_reserve(
    connection: Session,
    *,
    chat_id: int,
    user_id: int,
    task_id: int,
    amount: int,
    from_daily: int,
    from_purchased: int,
    day: str,
    now: float,
) -> None:
    await connection.execute(
        "INSERT INTO ledger (chat_id, user_id, task_id, kind, amount, from_daily, from_purchased,"
        " day, created_at) VALUES (?, ?, ?, 'reserve', ?, ?, ?, ?, ?)",
        (chat_id, user_id, task_id, amount, from_daily, from_purchased, day, now),
    )


async def settle(
    connection: Session, task_id: int, kind: Literal["commit", "refund"], now: float
) -> None:
    """Commit or refund a task's reservation; a second settlement of it is a no-op."""
    await connection.execute(
        """
        INSERT INTO ledger (chat_id, user_id, task_id, kind, amount, from_daily, from_purchased,
                            day, created_at)
        SELECT chat_id, user_id, task_id, CAST(? AS TEXT), amount, from_daily, from_purchased,
               day, CAST(? AS DOUBLE PRECISION)
        FROM ledger WHERE task_id = ? AND kind = 'reserve'
        ON CONFLICT DO NOTHING
        """,
        (kind, now, task_id),
    )


async def record_grant(
    connection: Session,
    *,
    chat_id: int,
    operator_id: int,
    amount: int,
    day: str,
    now: float,
) -> None:
    await connection.execute(
        "INSERT INTO ledger (chat_id, user_id, kind, amount, day, created_at)"
        " VALUES (?, ?, 'grant', ?, ?, ?)",
        (chat_id, operator_id, amount, day, now),
    )


async def record_payment(
    connection: Session,
    kind: Literal["purchase", "unpurchase"],
    *,
    chat_id: int,
    user_id: int,
    charge_id: str,
    amount: int,
    day: str,
    now: float,
) -> None:
    """A payment's credits (`purchase`), or what its refund took back (`unpurchase`):
    each once per charge id, whatever is repeated."""
    await connection.execute(
        "INSERT INTO ledger (chat_id, user_id, kind, amount, day, created_at, charge_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (chat_id, user_id, kind, amount, day, now, charge_id),
    )


class LedgerRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def balance(
        self,
        *,
        chat_id: int,
        day: str,
        daily_limit: int,
        user_id: int | None = None,
        user_cap: int | None = None,
    ) -> Balance:
        async with self._db.transaction() as connection:
            return await balance(
                connection,
                chat_id=chat_id,
                day=day,
                daily_limit=daily_limit,
                user_id=user_id,
                user_cap=user_cap,
            )

    async def grant(
        self, *, chat_id: int, operator_id: int, amount: int, day: str, now: float
    ) -> None:
        async with self._db.transaction() as connection:
            await record_grant(
                connection,
                chat_id=chat_id,
                operator_id=operator_id,
                amount=amount,
                day=day,
                now=now,
            )
