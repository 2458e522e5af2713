"""The tasks table: one row per generation task, moved through `bot.core.lifecycle` states.

Every state change is a conditional UPDATE (`WHERE state IN (allowed sources)`), so of
two workers racing to make the same move (a callback and a poll, a double press) exactly
one sees `True`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.core.breaker import AccountState
from bot.core.constants import is_group_chat
from bot.core.lifecycle import FINAL_STATES, FailureKind, TaskKind, TaskState, sources_of
from bot.core.line import turn_for
from bot.core.quota import Refusal, Reservation, reserve, utc_day
from storage import accounts, ledger
from storage.accounts import AccountStates
from storage.database import Database, Row, account_lock, chat_lock


@dataclass(frozen=True, slots=True)
class NewTask:
    kind: TaskKind
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
    image_file_id: str | None = None  # Telegram's id of that image (a user's own photo)
    inline_message_id: str | None = None  # made from inline mode: its result goes there
    # What makes the request one (a chat's message): a request delivered again finds the
    # task it made, and is not recorded, or charged, twice.
    request_key: str | None = None


HOUR = 3600.0
_NUDGES = "imagine_bot_task_nudge"  # the channel of `nudge`
_SLOTS = "imagine_bot_slot_passed"  # the channel of `pass_slot`

# What `mark_submitting` says: the request may leave; the task is no longer waiting; or the
# account is full (counting every process's tasks).
Submitting = Literal["sent", "gone", "full"]


@dataclass(frozen=True, slots=True)
class Caps:
    """An upstream account's limits, for all processes together."""

    running: int  # tasks it works on at once
    per_hour: int  # tasks created per rolling hour


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
    account: str  # the upstream account it was sent to; "" until its turn
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
    image_file_id: str | None
    media_file_ids: tuple[str, ...]
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    delivered_at: float | None
    inline_message_id: str | None = None
    turn: int = 0  # its turn in the line (chats take turns over every replica's tasks)

    @property
    def is_group(self) -> bool:
        return is_group_chat(self.chat_type)

    @classmethod
    def from_row(cls, row: Row) -> Task:
        failure_kind = row["failure_kind"]
        return cls(
            id=row["id"],
            kind=TaskKind(row["kind"]),
            state=TaskState(row["state"]),
            account=row["account"],
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
            image_file_id=row["image_file_id"],
            media_file_ids=tuple(json.loads(row["media_file_ids"] or "[]")),
            created_at=row["created_at"],
            submitted_at=row["submitted_at"],
            finished_at=row["finished_at"],
            delivered_at=row["delivered_at"],
            inline_message_id=row["inline_message_id"],
            turn=row["turn"],
        )


# Literally the condition of the `tasks_unfinished` partial index (0001_tasks.sql), so that
# SQLite can use it: a condition with bound parameters does not let it.
_UNFINISHED = "state NOT IN ('delivered', 'reported')"
# A task a process may claim (parameters: the process, now): nobody holds it, the process
# itself does, or the replica that does has let its heartbeat run out.
_FREE_FOR = (
    "(claimed_by IS NULL OR claimed_by = ? OR NOT EXISTS (SELECT 1 FROM replicas"
    " WHERE replicas.name = tasks.claimed_by AND replicas.alive_until >= ?))"
)
# Telegram keeps at least one of the task's results as a photo or video it can send again.
_HAS_FILE_ID = {
    "sqlite": "EXISTS (SELECT 1 FROM json_each(tasks.media_file_ids) WHERE value != '')",
    "postgresql": "EXISTS (SELECT 1 FROM json_array_elements_text(CAST(tasks.media_file_ids"
    " AS json)) AS item (value) WHERE value != '')",
}
# The album's messages, each with its index: (value, key) rows.
_ALBUM_ITEMS = {
    "sqlite": "json_each(tasks.album_message_ids) AS item",
    "postgresql": "json_array_elements_text(CAST(tasks.album_message_ids AS json))"
    " WITH ORDINALITY AS item (value, number), LATERAL (SELECT item.number - 1 AS key) AS k",
}
# Tasks the upstream may be working on hold a slot of their account (the caps); literally
# the condition of the `tasks_upstream_has` partial index (0009_caps.sql).
_UPSTREAM_HAS = "state IN ('submitting', 'running')"
assert {"delivered", "reported"} == set(FINAL_STATES)


def _encode(name: str, value: object) -> object:
    """A column's value as the database stores it: lists as JSON."""
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return value


class ClaimLost(Exception):
    """Nothing was done: the process no longer holds the task's claim (another took it
    over while this one was frozen or cut off)."""


class TaskRepository:
    def __init__(self, database: Database, *, holder: str | None = None) -> None:
        self._db = database
        self._holder = holder  # moves and notes are fenced by this process's claim

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
        if self._holder is not None and not await self.holds(task_id, self._holder):
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
                    return Task.from_row(made)
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
            task = Task.from_row(row)
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
        return Task.from_row(row) if row else None

    async def find_by_upstream_id(self, account: str, upstream_task_id: str) -> Task | None:
        row = await self._db.fetch_one(
            "SELECT * FROM tasks WHERE account = ? AND upstream_task_id = ?",
            (account, upstream_task_id),
        )
        return Task.from_row(row) if row else None

    async def find_by_message(self, chat_id: int, message_id: int) -> tuple[Task, int] | None:
        """The task whose delivered media include this message, and the item's index."""
        dialect = self._db.dialect
        row = await self._db.fetch_one(
            f"SELECT tasks.*, key AS item_index FROM tasks, {_ALBUM_ITEMS[dialect]}"
            " WHERE tasks.chat_id = ? AND item.value = ? ORDER BY tasks.id DESC LIMIT 1",
            # (PostgreSQL reads a JSON list's items as text.)
            (chat_id, message_id if dialect == "sqlite" else str(message_id)),
        )
        return (Task.from_row(row), int(row["item_index"])) if row else None

    async def find_by_inline_message(self, inline_message_id: str) -> Task | None:
        row = await self._db.fetch_one(
            "SELECT * FROM tasks WHERE inline_message_id = ?", (inline_message_id,)
        )
        return Task.from_row(row) if row else None

    async def images_of(self, user_id: int, limit: int) -> list[Task]:
        """A user's latest delivered image sets that Telegram keeps photo ids of, newest
        first (matching a prompt is the caller's: SQLite's LIKE folds ASCII case only)."""
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE user_id = ? AND state = 'delivered' AND kind = ?"
            f" AND {_HAS_FILE_ID[self._db.dialect]} ORDER BY id DESC LIMIT ?",
            (user_id, TaskKind.TEXT_TO_IMAGE, limit),
        )
        return [Task.from_row(row) for row in rows]

    async def delivered_of(
        self, chat_id: int, user_id: int, *, offset: int, limit: int
    ) -> tuple[list[Task], int]:
        """A member's delivered results in a chat that Telegram keeps file ids of, newest
        first (`limit` of them from `offset`), and how many there are in all."""
        where = (
            "chat_id = ? AND user_id = ? AND state = 'delivered'"
            f" AND {_HAS_FILE_ID[self._db.dialect]}"
        )
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (chat_id, user_id, limit, offset),
        )
        count = await self._db.fetch_one(
            f"SELECT COUNT(*) FROM tasks WHERE {where}", (chat_id, user_id)
        )
        return [Task.from_row(row) for row in rows], int(count[0]) if count else 0

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
        return [Task.from_row(row) for row in rows]

    # --- claims: who drives an unfinished task, while its replica's heartbeat is alive ------

    async def beat(self, owner: str, *, until: float) -> None:
        """`owner` is alive until `until`: its claims hold till then (one row per replica,
        however many tasks it holds)."""
        await self._db.execute(
            "INSERT INTO replicas (name, alive_until) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET alive_until = excluded.alive_until",
            (owner, until),
        )

    async def claim(self, task_id: int, owner: str, *, now: float) -> Task | None:
        """Take the task for `owner` and return it as it is now: if it is unfinished and
        nobody else holds it (no claim, `owner`'s own, or a replica whose heartbeat ran out
        by `now`). None if not."""
        row = await self._db.fetch_one(
            f"UPDATE tasks SET claimed_by = ? WHERE id = ? AND {_UNFINISHED} AND {_FREE_FOR}"
            " RETURNING *",
            (owner, task_id, owner, now),
        )
        return Task.from_row(row) if row else None

    async def claimable(self, owner: str, *, now: float) -> list[Task]:
        """Unfinished tasks `owner` may claim: unclaimed, its own, or their replica's
        heartbeat ran out."""
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE {_UNFINISHED} AND {_FREE_FOR}", (owner, now)
        )
        # Sorted here: an ORDER BY id would lead SQLite to scan the whole table instead.
        return sorted((Task.from_row(row) for row in rows), key=lambda task: task.id)

    async def claimable_ids(self, owner: str, *, now: float) -> dict[int, bool]:
        """`claimable`, as task id → whether `owner` holds it already: two columns, for a
        look every few seconds at however many tasks."""
        rows = await self._db.fetch_all(
            f"SELECT id, claimed_by FROM tasks WHERE {_UNFINISHED} AND {_FREE_FOR}",
            (owner, now),
        )
        return {row[0]: row[1] == owner for row in rows}

    async def holds(self, task_id: int, owner: str) -> bool:
        """Whether `owner` still holds its claim on the task (nobody took it over)."""
        row = await self._db.fetch_one(
            "SELECT 1 FROM tasks WHERE id = ? AND claimed_by = ?", (task_id, owner)
        )
        return row is not None

    async def taken_from(self, owner: str, task_ids: Sequence[int]) -> set[int]:
        """Which of these unfinished tasks `owner` no longer holds (its heartbeat ran out
        while it could not beat, and another process claimed them)."""
        if not task_ids:
            return set()
        marks = ", ".join("?" for _ in task_ids)
        rows = await self._db.fetch_all(
            f"SELECT id FROM tasks WHERE id IN ({marks}) AND {_UNFINISHED}"
            " AND (claimed_by IS NULL OR claimed_by != ?)",
            (*task_ids, owner),
        )
        return {row[0] for row in rows}

    async def let_go(self, owner: str, task_ids: Sequence[int]) -> None:
        """`owner` lets go of these tasks (it holds more than it may drive): anyone's now."""
        if not task_ids:
            return
        marks = ", ".join("?" for _ in task_ids)
        await self._db.execute(
            f"UPDATE tasks SET claimed_by = NULL WHERE id IN ({marks}) AND claimed_by = ?",
            (*task_ids, owner),
        )

    async def release_claims(self, owner: str) -> None:
        """`owner` stops: what it held is anyone's to pick up at once."""
        async with self._db.transaction() as connection:
            await connection.execute(
                f"UPDATE tasks SET claimed_by = NULL WHERE {_UNFINISHED} AND claimed_by = ?",
                (owner,),
            )
            await connection.execute("DELETE FROM replicas WHERE name = ?", (owner,))

    # --- between processes: a freed slot goes to the earliest turn, whoever holds it -----

    async def earliest_waiting_elsewhere(
        self, owner: str, kinds: Sequence[TaskKind], *, now: float
    ) -> tuple[tuple[int, int], str] | None:
        """The earliest place in line, as (turn, id), and its holder, among the waiting
        tasks of these kinds that a live process other than `owner` drives (follow-ups,
        pinned to their source's account, are left out); None if there is none."""
        if not kinds:
            return None
        marks = ", ".join("?" for _ in kinds)
        row = await self._db.fetch_one(
            "SELECT turn, id, claimed_by FROM tasks WHERE state = 'pending'"
            f" AND kind IN ({marks}) AND source_task_id IS NULL AND claimed_by != ?"
            " AND EXISTS (SELECT 1 FROM replicas WHERE replicas.name = tasks.claimed_by"
            " AND replicas.alive_until >= ?) ORDER BY turn, id LIMIT 1",
            (*kinds, owner, now),
        )
        return ((int(row[0]), int(row[1])), str(row[2])) if row else None

    async def pass_slot(self, to: str, account: str) -> None:
        """Tell process `to` that a slot of `account` is free for its earliest task."""
        await self._db.notify(_SLOTS, f"{to}\n{account}")

    async def on_slot(self, listener: Callable[[str, str], None]) -> None:
        """`listener(to, account)` for every slot passed on, by any process."""

        def heard(payload: str) -> None:
            to, _, account = payload.partition("\n")
            listener(to, account)

        await self._db.listen(_SLOTS, heard)

    # --- between processes: "read this task's status now" -----------------------------------

    async def nudge(self, task_id: int) -> None:
        """Tell whichever process drives the task (this one, or a replica) to read it now."""
        await self._db.notify(_NUDGES, str(task_id))

    async def on_nudge(self, listener: Callable[[int], None]) -> None:
        await self._db.listen(_NUDGES, lambda payload: listener(int(payload)))

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
                    f" AND (SELECT COUNT(*) FROM tasks WHERE account = ? AND {_UPSTREAM_HAS}) < ?"
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
            *(_encode(name, value) for name, value in fields.items()),
            task_id,
            *sources,
            *held_by,
        )
        if to not in (TaskState.FAILED, TaskState.DELIVERED):
            row = await self._db.fetch_one(sql, params)  # one statement: atomic alone
            if row is None:
                await self._not_moved(task_id)
            return Task.from_row(row) if row else None
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
        return Task.from_row(row)

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
                *(_encode(name, value) for name, value in fields.items()),
                time.time(),
                task_id,
                *held_by,
            ),
        )
        if row is None:
            await self._not_moved(task_id)
        return Task.from_row(row) if row else None
