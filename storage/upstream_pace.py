"""The pace of status reads each upstream account allows, shared by every process on the
database: a read reserves its moment in one statement (a leaky bucket kept as the moment
it would be empty, as `storage.telegram_pace` keeps Telegram's)."""

from __future__ import annotations

from storage.database import Database
from storage.telegram_pace import Bucket


class UpstreamPace:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def reserve(self, account: str, bucket: Bucket, *, now: float) -> float:
        """Reserve one read of `account`'s; returns the moment it may go."""
        step = 1 / bucket.rate
        row = await self._db.fetch_one(
            "INSERT INTO upstream_pace (account, tat, step) VALUES (?, ?, ?)"
            " ON CONFLICT (account) DO UPDATE SET step = excluded.step, tat = CASE"
            " WHEN upstream_pace.tat + excluded.step > excluded.tat"
            " THEN upstream_pace.tat + excluded.step ELSE excluded.tat END"
            " RETURNING tat",
            (account, now + step, step),
        )
        assert row is not None
        return max(now, float(row[0]) - bucket.capacity / bucket.rate)
