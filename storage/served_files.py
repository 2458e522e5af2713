"""Files the bot serves to the upstream itself, behind unguessable, short-lived tokens."""

from __future__ import annotations

import secrets
import time

from storage.database import Database


class ServedFiles:
    def __init__(self, database: Database, *, lifetime: float = 24 * 3600) -> None:
        self._db = database
        self._lifetime = lifetime

    async def add(self, content: bytes, content_type: str) -> str:
        """Keep `content`; returns its token. Expired files are dropped on the way."""
        now = time.time()
        token = secrets.token_urlsafe(32)
        async with self._db.transaction() as connection:
            await connection.execute("DELETE FROM served_files WHERE expires_at < ?", (now,))
            await connection.execute(
                "INSERT INTO served_files (token, content_type, content, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (token, content_type, content, now + self._lifetime),
            )
        return token

    async def get(self, token: str) -> tuple[bytes, str] | None:
        row = await self._db.fetch_one(
            "SELECT content, content_type FROM served_files WHERE token = ? AND expires_at >= ?",
            (token, time.time()),
        )
        return (bytes(row[0]), str(row[1])) if row else None
