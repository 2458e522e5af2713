"""The tasks table: one row per generation task, moved through `bot.core.lifecycle` states.

Every state change is a conditional UPDATE (`WHERE state IN (allowed sources)`), so of
two workers racing to make the same move (a callback and a poll, a double press) exactly
one sees `True`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from bot.core.breaker import AccountState
from bot.core.lifecycle import FINAL_STATES, FailureKind, TaskKind, TaskState, sources_of
from bot.core.line import turn_for
from bot.core.quota import Refusal, Reservation, reserve, utc_day
from bot.core.task import Caps, Charge, NewTask, Task
from storage import accounts, ledger
from storage.accounts import AccountStates
from storage.claims import ClaimLost, Claims
from storage.database import Database, account_lock, chat_lock
from storage.task_rows import (
    ALBUM_ITEMS,
    HAS_FILE_ID,
    UPSTREAM_HAS,
    encode,
    task_from_row,
)

HOUR = 3600.0

# What `mark_submitting` says: the request may leave; the task is no longer waiting; or the
# account is full (counting every process's tasks).
Submitting = Literal["sent", "gone", "full"]


class TaskRepository:
    def __init__(self, database: Database, *, holder: str | None = None) -> None:
        self._db = database
        self._holder = holder  # moves and notes are fenced by this process's claim
        # Who drives which task, and the notices between processes about tasks.
        self.claims = Claims(database)

    def held_by(self, owner: str) -> TaskRepository:
        """The same tasks, as the process `owner` drives them: every move and note of a
        task made through this is written only while `owner` holds the task's claim (in
        the same statement), else `ClaimLost`. A replica whose task was taken over can
        change nothing of it."""
        return TaskRepository(self._db, holder=owner)

    def ahead_of_the_line(self) -> TaskRepository:
        """The same tasks (fenced as these are), their statements served before those
        waiting without it: for what an upstream slot waits on (`storage/turns.py`)."""
        return TaskRepository(self._db.ahead_of_the_line(), holder=self._holder)

    def _fence(self) -> tuple[str, tuple[object, ...]]:
        """The condition (and its parameter) that fences a write by the claim, if any."""
        if self._holder is None:
            return "", ()
        return " AND claimed_by = ?", (self._holder,)

    async def _not_moved(self, task_id: int) -> None:
        """A fenced write changed nothing: raise `ClaimLost` if the claim is why."""
        if self._holder is not None and not await self.claims.holds(task_id, self._holder):
            raise ClaimLost(f"task {task_id} is no longer {self._holder}'s")

    async def create(self, new: NewTask, charge: Charge | None = None) -> Task | Refusal:
        """Record a task and reserve its cost in one transaction, or refuse it unrecorded. A
        request recorded before (its `request_key`) returns the task it made, charged once."""
        now = time.time()
        async with self._db.transaction(locks=[chat_lock(new.chat_id)]) as connection:
            if new.request_key is not None:
                made = await connection.fetch_one(
                    "SELECT tasks.* FROM task_requests JOIN tasks ON tasks.id = task_id"
                    " WHERE key = ?",
                    (new.request_key,),
                )
                if made is not None:
                    return task_from_row(made)
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
            # Its turn in the line of every replica (the chat's lock keeps its own in order).
            line = await connection.fetch_one(
                "SELECT (SELECT MIN(turn) FROM tasks WHERE state = 'pending'),"
                " (SELECT MAX(turn) FROM tasks WHERE chat_id = ? AND state = 'pending'),"
                " (SELECT turn FROM tasks ORDER BY id DESC LIMIT 1)",
                (new.chat_id,),
            )
            assert line is not None
            turn = turn_for(head=line[0], last_of_chat=line[1], latest=line[2] or 0)
            rows = await connection.fetch_all(
                """
                INSERT INTO tasks (kind, state, account, chat_id, chat_type, user_id, lang,
                                   message_thread_id, request_message_id, prompt, aspect_ratio,
                                   parent_task_id, callback_secret, cost, mode, source_task_id,
                                   source_index, image_url, created_at, updated_at,
                                   inline_message_id, image_file_id, turn)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                RETURNING *
                """,
                (
                    new.kind,
                    TaskState.PENDING,
                    "",
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
                    new.inline_message_id,
                    new.image_file_id,
                    turn,
                ),
            )
            (row,) = rows
            task = task_from_row(row)
            if new.request_key is not None:
                await connection.execute(
                    "INSERT INTO task_requests (key, task_id) VALUES (?, ?)",
                    (new.request_key, task.id),
                )
            if isinstance(reservation, Reservation) and charge is not None:
                await ledger.record_reserve(
                    connection,
                    chat_id=new.chat_id,
                    user_id=new.user_id,
                    task_id=task.id,
                    amount=reservation.amount,
                    from_daily=reservation.from_daily,
                    from_purchased=reservation.from_purchased,
                    day=utc_day(charge.now),
                    now=now,
                )
        return task

    async def get(self, task_id: int) -> Task | None:
        row = await self._db.fetch_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return task_from_row(row) if row else None

    async def find_by_upstream_id(self, account: str, upstream_task_id: str) -> Task | None:
        row = await self._db.fetch_one(
            "SELECT * FROM tasks WHERE account = ? AND upstream_task_id = ?",
            (account, upstream_task_id),
        )
        return task_from_row(row) if row else None

    async def find_by_message(self, chat_id: int, message_id: int) -> tuple[Task, int] | None:
        """The task whose delivered media include this message, and the item's index."""
        dialect = self._db.dialect
        row = await self._db.fetch_one(
            f"SELECT tasks.*, key AS item_index FROM tasks, {ALBUM_ITEMS[dialect]}"
            " WHERE tasks.chat_id = ? AND item.value = ? ORDER BY tasks.id DESC LIMIT 1",
            # (PostgreSQL reads a JSON list's items as text.)
            (chat_id, message_id if dialect == "sqlite" else str(message_id)),
        )
        return (task_from_row(row), int(row["item_index"])) if row else None

    async def find_by_inline_message(self, inline_message_id: str) -> Task | None:
        row = await self._db.fetch_one(
            "SELECT * FROM tasks WHERE inline_message_id = ?", (inline_message_id,)
        )
        return task_from_row(row) if row else None

    async def images_of(self, user_id: int, limit: int) -> list[Task]:
        """A user's latest delivered image sets that Telegram keeps photo ids of, newest
        first (matching a prompt is the caller's: SQLite's LIKE folds ASCII case only)."""
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE user_id = ? AND state = 'delivered' AND kind = ?"
            f" AND {HAS_FILE_ID[self._db.dialect]} ORDER BY id DESC LIMIT ?",
            (user_id, TaskKind.TEXT_TO_IMAGE, limit),
        )
        return [task_from_row(row) for row in rows]

    async def delivered_of(
        self, chat_id: int, user_id: int, *, offset: int, limit: int
    ) -> tuple[list[Task], int]:
        """A member's delivered results in a chat that Telegram keeps file ids of, newest
        first (`limit` of them from `offset`), and how many there are in all."""
        where = (
            "chat_id = ? AND user_id = ? AND state = 'delivered'"
            f" AND {HAS_FILE_ID[self._db.dialect]}"
        )
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (chat_id, user_id, limit, offset),
        )
        count = await self._db.fetch_one(
            f"SELECT COUNT(*) FROM tasks WHERE {where}", (chat_id, user_id)
        )
        return [task_from_row(row) for row in rows], int(count[0]) if count else 0

    async def latest_of(self, chat_id: int, user_id: int) -> Task | None:
        """The member's most recent task in the chat that is not final."""
        final = tuple(FINAL_STATES)
        marks = ", ".join("?" for _ in final)
        row = await self._db.fetch_one(
            f"SELECT * FROM tasks WHERE chat_id = ? AND user_id = ? AND state NOT IN ({marks})"
            " ORDER BY id DESC LIMIT 1",
            (chat_id, user_id, *final),
        )
        return task_from_row(row) if row else None

    async def find_by_status_message(self, chat_id: int, message_id: int) -> Task | None:
        row = await self._db.fetch_one(
            "SELECT * FROM tasks WHERE chat_id = ? AND status_message_id = ?", (chat_id, message_id)
        )
        return task_from_row(row) if row else None

    async def submitted_since(self, moment: float) -> list[tuple[str, float]]:
        """Which account each task created upstream since `moment` went to, and when (the
        hourly caps)."""
        rows = await self._db.fetch_all(
            "SELECT account, submitted_at FROM tasks WHERE submitted_at >= ? ORDER BY submitted_at",
            (moment,),
        )
        return [(row[0], row[1]) for row in rows]

    async def created_since(self, accounts: Sequence[str], moment: float) -> int:
        """Creates sent to these accounts since `moment`, by every process."""
        if not accounts:
            return 0
        marks = ", ".join("?" for _ in accounts)
        row = await self._db.fetch_one(
            f"SELECT COUNT(*) FROM tasks WHERE account IN ({marks}) AND submitted_at > ?",
            (*accounts, moment),
        )
        return int(row[0]) if row else 0

    async def recent_seconds(self, kind: TaskKind, last: int = 50) -> float | None:
        """How long the last `last` tasks of this kind took upstream (the median); None if
        none is known."""
        rows = await self._db.fetch_all(
            "SELECT finished_at - submitted_at FROM tasks WHERE kind = ? AND state = 'delivered'"
            " AND submitted_at IS NOT NULL AND finished_at IS NOT NULL ORDER BY id DESC LIMIT ?",
            (kind, last),
        )
        seconds = sorted(float(row[0]) for row in rows)
        return seconds[len(seconds) // 2] if seconds else None

    async def places(self) -> dict[int, int]:
        """Every waiting task's place in the line of all replicas (1: next)."""
        rows = await self._db.fetch_all(
            "SELECT id FROM tasks WHERE state = 'pending' ORDER BY turn, id"
        )
        return {row[0]: place for place, row in enumerate(rows, start=1)}

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
        return [task_from_row(row) for row in rows]

    # --- moves: each a conditional UPDATE, so of two racers exactly one wins ---------------

    async def mark_submitting(
        self,
        task_id: int,
        account: str,
        *,
        at: float,
        caps: Caps | None = None,
        admit: Callable[[AccountState], AccountState | None] | None = None,
    ) -> Submitting:
        """The create request is about to leave for `account` (`at`: for the hourly cap
        and the timeout), if the task is still waiting, the account's `caps` leave room
        for it, counting every process's tasks, and `admit` (given the account's shared
        state: its breaker, a pause) lets it through, in one step under the account's lock:
        "sent", "gone" (cancelled meanwhile) or "full" (the account cannot take it now; the
        task keeps waiting). The state `admit` returns is the account's from then on."""
        sources = tuple(sources_of(TaskState.SUBMITTING))
        marks = ", ".join("?" for _ in sources)
        fence, held_by = self._fence()
        sql = (
            "UPDATE tasks SET state = ?, updated_at = ?, account = ?, submitted_at = ?"
            f" WHERE id = ? AND state IN ({marks}){fence}"
        )
        params: tuple[object, ...] = (TaskState.SUBMITTING, time.time(), account, at, task_id)
        params += sources + held_by
        if caps is None and admit is None:
            moved = await self._db.execute(sql, params)
        else:
            if caps is not None:
                sql += (
                    f" AND (SELECT COUNT(*) FROM tasks WHERE account = ? AND {UPSTREAM_HAS}) < ?"
                    " AND (SELECT COUNT(*) FROM tasks WHERE account = ? AND submitted_at > ?) < ?"
                )
                params += (account, caps.running, account, at - HOUR, caps.per_hour)
            # Decided and moved under the account's lock: no other process's in between.
            changed = False
            async with self._db.transaction(locks=[account_lock(account)]) as connection:
                state = await accounts.read(connection, account) if admit else None
                admitted = admit(state) if admit is not None and state is not None else None
                moved = 0
                if admit is None or admitted is not None:
                    moved = await connection.execute(sql, params)
                if moved and admitted is not None and admitted != state:
                    await accounts.write(connection, account, admitted)
                    changed = True
            if changed:
                await AccountStates(self._db).changed(account)  # (a probe went out)
        if moved == 1:
            return "sent"
        await self._not_moved(task_id)
        task = await self.get(task_id)
        return "full" if task is not None and task.state in sources else "gone"

    # Each returns the task as this call left it, or None if this call did not move it.

    async def mark_refused(self, task_id: int) -> Task | None:
        """The account refused the create before taking the task: back in line, for
        another account."""
        return await self._move(task_id, TaskState.PENDING, {"account": "", "submitted_at": None})

    async def mark_running(self, task_id: int, upstream_task_id: str) -> Task | None:
        return await self._move(task_id, TaskState.RUNNING, {"upstream_task_id": upstream_task_id})

    async def mark_succeeded(
        self, task_id: int, result_urls: Sequence[str], *, at: float
    ) -> Task | None:
        fields = {"result_urls": result_urls, "finished_at": at}
        return await self._move(task_id, TaskState.SUCCEEDED, fields)

    async def mark_delivering(self, task_id: int) -> Task | None:
        return await self._move(task_id, TaskState.DELIVERING, {})

    async def mark_delivered(self, task_id: int, *, at: float) -> Task | None:
        """Delivered; its credits are committed in the same transaction."""
        return await self._move(task_id, TaskState.DELIVERED, {"delivered_at": at})

    async def mark_failed(
        self, task_id: int, kind: FailureKind, detail: str | None = None, *, at: float
    ) -> Task | None:
        """Failed; its credits are refunded in the same transaction. A failure is recorded
        once: a second call changes nothing and returns None."""
        fields = {"failure_kind": kind, "failure_detail": detail, "finished_at": at}
        return await self._move(task_id, TaskState.FAILED, fields)

    async def mark_reported(self, task_id: int) -> Task | None:
        return await self._move(task_id, TaskState.REPORTED, {})

    async def _move(self, task_id: int, to: TaskState, fields: Mapping[str, object]) -> Task | None:
        """Move the task to `to` if its current state allows it: the task as moved, or
        None if this call did not move it (the row it returns saves the caller a read)."""
        sources = tuple(sources_of(to))
        assignments = "".join(f", {name} = ?" for name in fields)
        marks = ", ".join("?" for _ in sources)
        now = time.time()
        fence, held_by = self._fence()
        sql = (
            f"UPDATE tasks SET state = ?, updated_at = ?{assignments}"
            f" WHERE id = ? AND state IN ({marks}){fence} RETURNING *"
        )
        params = (
            to,
            now,
            *(encode(name, value) for name, value in fields.items()),
            task_id,
            *sources,
            *held_by,
        )
        if to not in (TaskState.FAILED, TaskState.DELIVERED):
            row = await self._db.fetch_one(sql, params)  # one statement: atomic alone
            if row is None:
                await self._not_moved(task_id)
            return task_from_row(row) if row else None
        # A refund is decided under the chat's lock, as a payment's take-back is (which
        # counts what tasks not yet settled hold).
        locks = []
        if to is TaskState.FAILED:
            owner = await self._db.fetch_one("SELECT chat_id FROM tasks WHERE id = ?", (task_id,))
            locks = [chat_lock(owner[0])] if owner else []
        async with self._db.transaction(locks=locks) as connection:
            row = await connection.fetch_one(sql, params)
            # The credits follow the outcome, in the same transaction as the outcome.
            if row is not None and to is TaskState.FAILED:
                await ledger.settle(connection, task_id, "refund", now)
            elif row is not None and to is TaskState.DELIVERED:
                await ledger.settle(connection, task_id, "commit", now)
        if row is None:
            await self._not_moved(task_id)
            return None
        return task_from_row(row)

    # --- the Telegram messages a task owns, noted without changing its state ---------------

    # Each returns the task as noted (None only if there is no such task).

    async def note_status_message(self, task_id: int, message_id: int) -> Task | None:
        return await self._note(task_id, {"status_message_id": message_id})

    async def note_album(
        self, task_id: int, message_ids: Sequence[int | None], file_ids: Sequence[str | None]
    ) -> Task | None:
        fields = {"album_message_ids": message_ids, "media_file_ids": file_ids}
        return await self._note(task_id, fields)

    async def note_buttons(self, task_id: int, message_id: int) -> Task | None:
        return await self._note(task_id, {"buttons_message_id": message_id})

    async def _note(self, task_id: int, fields: Mapping[str, object]) -> Task | None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        fence, held_by = self._fence()
        row = await self._db.fetch_one(
            f"UPDATE tasks SET {assignments}, updated_at = ? WHERE id = ?{fence} RETURNING *",
            (
                *(encode(name, value) for name, value in fields.items()),
                time.time(),
                task_id,
                *held_by,
            ),
        )
        if row is None:
            await self._not_moved(task_id)
        return task_from_row(row) if row else None
