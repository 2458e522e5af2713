"""The tasks table: one row per generation task, moved through `bot.core.lifecycle` states.

Every state change is a conditional UPDATE (`WHERE state IN (allowed sources)`), so of
two workers racing to make the same move (a callback and a poll, a double press) exactly
one sees `True`.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.core.lifecycle import FINAL_STATES, FailureKind, TaskKind, TaskState, sources_of
from bot.core.quota import Refusal, Reservation, reserve, utc_day
from storage import ledger
from storage.database import Database


@dataclass(frozen=True, slots=True)
class NewTask:
    kind: TaskKind
    provider: str
    chat_id: int
    chat_type: str
    user_id: int
    lang: str
    prompt: str
    aspect_ratio: str
    message_thread_id: int | None = None
    request_message_id: int | None = None
    parent_task_id: int | None = None
    mode: str | None = None
    source_task_id: int | None = None
    source_index: int | None = None
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """What a new task costs and the limits it must fit in, at the moment `now`."""

    cost: int
    daily_limit: int
    user_cap: int | None
    now: float


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: TaskKind
    state: TaskState
    provider: str
    chat_id: int
    chat_type: str
    user_id: int
    lang: str
    message_thread_id: int | None
    request_message_id: int | None
    status_message_id: int | None
    prompt: str
    aspect_ratio: str
    parent_task_id: int | None
    upstream_task_id: str | None
    result_urls: tuple[str, ...]
    failure_kind: FailureKind | None
    failure_detail: str | None
    album_message_ids: tuple[int, ...]
    buttons_message_id: int | None
    callback_secret: str | None
    cost: int
    mode: str | None
    source_task_id: int | None
    source_index: int | None
    image_url: str | None
    media_file_ids: tuple[str, ...]
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    delivered_at: float | None

    @property
    def is_group(self) -> bool:
        return self.chat_type in ("group", "supergroup")

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> Task:
        failure_kind = row["failure_kind"]
        return cls(
            id=row["id"],
            kind=TaskKind(row["kind"]),
            state=TaskState(row["state"]),
            provider=row["provider"],
            chat_id=row["chat_id"],
            chat_type=row["chat_type"],
            user_id=row["user_id"],
            lang=row["lang"],
            message_thread_id=row["message_thread_id"],
            request_message_id=row["request_message_id"],
            status_message_id=row["status_message_id"],
            prompt=row["prompt"],
            aspect_ratio=row["aspect_ratio"],
            parent_task_id=row["parent_task_id"],
            upstream_task_id=row["upstream_task_id"],
            result_urls=tuple(json.loads(row["result_urls"] or "[]")),
            failure_kind=FailureKind(failure_kind) if failure_kind else None,
            failure_detail=row["failure_detail"],
            album_message_ids=tuple(json.loads(row["album_message_ids"] or "[]")),
            buttons_message_id=row["buttons_message_id"],
            callback_secret=row["callback_secret"],
            cost=row["cost"],
            mode=row["mode"],
            source_task_id=row["source_task_id"],
            source_index=row["source_index"],
            image_url=row["image_url"],
            media_file_ids=tuple(json.loads(row["media_file_ids"] or "[]")),
            created_at=row["created_at"],
            submitted_at=row["submitted_at"],
            finished_at=row["finished_at"],
            delivered_at=row["delivered_at"],
        )


# Columns a move may set besides the state; anything else is a programming error.
_MOVABLE_FIELDS = frozenset(
    {
        "upstream_task_id",
        "result_urls",
        "failure_kind",
        "failure_detail",
        "submitted_at",
        "finished_at",
        "delivered_at",
    }
)
_NOTE_FIELDS = frozenset(
    {"status_message_id", "album_message_ids", "buttons_message_id", "media_file_ids"}
)


def _encode(name: str, value: Any) -> Any:
    if name in ("result_urls", "album_message_ids", "media_file_ids") and value is not None:
        return json.dumps(list(value))
    return value


class TaskRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, new: NewTask, charge: Charge | None = None) -> Task | Refusal:
        """Record a task and reserve its cost in one transaction, or refuse it unrecorded."""
        now = time.time()
        async with self._db.transaction() as connection:
            reservation: Reservation | Refusal | None = None
            if charge is not None and charge.cost > 0:
                day = utc_day(charge.now)
                current = await ledger.balance(
                    connection,
                    chat_id=new.chat_id,
                    day=day,
                    daily_limit=charge.daily_limit,
                    user_id=new.user_id,
                    user_cap=charge.user_cap,
                )
                reservation = reserve(current, charge.cost)
                if isinstance(reservation, Refusal):
                    return reservation
            cursor = await connection.execute(
                """
                INSERT INTO tasks (kind, state, provider, chat_id, chat_type, user_id, lang,
                                   message_thread_id, request_message_id, prompt, aspect_ratio,
                                   parent_task_id, callback_secret, cost, mode, source_task_id,
                                   source_index, image_url, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    new.kind,
                    TaskState.PENDING,
                    new.provider,
                    new.chat_id,
                    new.chat_type,
                    new.user_id,
                    new.lang,
                    new.message_thread_id,
                    new.request_message_id,
                    new.prompt,
                    new.aspect_ratio,
                    new.parent_task_id,
                    secrets.token_urlsafe(24),
                    charge.cost if charge else 0,
                    new.mode,
                    new.source_task_id,
                    new.source_index,
                    new.image_url,
                    now,
                    now,
                ),
            )
            task_id = cursor.lastrowid
            assert task_id is not None
            if isinstance(reservation, Reservation) and charge is not None:
                await ledger.record_reserve(
                    connection,
                    chat_id=new.chat_id,
                    user_id=new.user_id,
                    task_id=task_id,
                    amount=reservation.amount,
                    from_daily=reservation.from_daily,
                    day=utc_day(charge.now),
                    now=now,
                )
        task = await self.get(task_id)
        assert task is not None
        return task

    async def get(self, task_id: int) -> Task | None:
        row = await self._db.fetch_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return Task.from_row(row) if row else None

    async def find_by_upstream_id(self, provider: str, upstream_task_id: str) -> Task | None:
        row = await self._db.fetch_one(
            "SELECT * FROM tasks WHERE provider = ? AND upstream_task_id = ?",
            (provider, upstream_task_id),
        )
        return Task.from_row(row) if row else None

    async def find_by_message(self, chat_id: int, message_id: int) -> tuple[Task, int] | None:
        """The task whose delivered media include this message, and the item's index."""
        row = await self._db.fetch_one(
            """
            SELECT tasks.*, item.key AS item_index
            FROM tasks, json_each(tasks.album_message_ids) AS item
            WHERE tasks.chat_id = ? AND item.value = ? ORDER BY tasks.id DESC LIMIT 1
            """,
            (chat_id, message_id),
        )
        return (Task.from_row(row), int(row["item_index"])) if row else None

    async def latest_of(self, chat_id: int, user_id: int) -> Task | None:
        """The member's most recent task in the chat that is not final."""
        final = tuple(FINAL_STATES)
        marks = ", ".join("?" for _ in final)
        row = await self._db.fetch_one(
            f"SELECT * FROM tasks WHERE chat_id = ? AND user_id = ? AND state NOT IN ({marks})"
            " ORDER BY id DESC LIMIT 1",
            (chat_id, user_id, *final),
        )
        return Task.from_row(row) if row else None

    async def find_by_status_message(self, chat_id: int, message_id: int) -> Task | None:
        row = await self._db.fetch_one(
            "SELECT * FROM tasks WHERE chat_id = ? AND status_message_id = ?", (chat_id, message_id)
        )
        return Task.from_row(row) if row else None

    async def submitted_since(self, moment: float) -> list[float]:
        """When the tasks created upstream since `moment` were created (the hourly cap)."""
        rows = await self._db.fetch_all(
            "SELECT submitted_at FROM tasks WHERE submitted_at >= ? ORDER BY submitted_at",
            (moment,),
        )
        return [row[0] for row in rows]

    async def count_unfinished(self) -> dict[str, int]:
        final = tuple(FINAL_STATES)
        marks = ", ".join("?" for _ in final)
        rows = await self._db.fetch_all(
            f"SELECT state, COUNT(*) FROM tasks WHERE state NOT IN ({marks}) GROUP BY state", final
        )
        return {row[0]: row[1] for row in rows}

    async def unfinished(self) -> list[Task]:
        final = tuple(FINAL_STATES)
        marks = ", ".join("?" for _ in final)
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE state NOT IN ({marks}) ORDER BY id", final
        )
        return [Task.from_row(row) for row in rows]

    async def move(self, task_id: int, to: TaskState, **fields: Any) -> bool:
        """Move the task to `to` if its current state allows it; True if this call did."""
        unknown = set(fields) - _MOVABLE_FIELDS
        if unknown:
            raise ValueError(f"not movable fields: {sorted(unknown)}")
        sources = tuple(sources_of(to))
        assignments = "".join(f", {name} = ?" for name in fields)
        marks = ", ".join("?" for _ in sources)
        now = time.time()
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                f"UPDATE tasks SET state = ?, updated_at = ?{assignments} "
                f"WHERE id = ? AND state IN ({marks})",
                (
                    to,
                    now,
                    *(_encode(name, value) for name, value in fields.items()),
                    task_id,
                    *sources,
                ),
            )
            if cursor.rowcount != 1:
                return False
            # The credits follow the outcome, in the same transaction as the outcome.
            if to is TaskState.FAILED:
                await ledger.settle(connection, task_id, "refund", now)
            elif to is TaskState.DELIVERED:
                await ledger.settle(connection, task_id, "commit", now)
        return True

    async def note(self, task_id: int, **fields: Any) -> None:
        """Record the Telegram messages a task owns, without changing its state."""
        unknown = set(fields) - _NOTE_FIELDS
        if unknown or not fields:
            raise ValueError(f"not note fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self._db.execute(
            f"UPDATE tasks SET {assignments}, updated_at = ? WHERE id = ?",
            (*(_encode(name, value) for name, value in fields.items()), time.time(), task_id),
        )
