"""Who drives each unfinished task: claims on tasks, held while the claiming process's
heartbeat is alive (one row per replica in `replicas`, not a lease per task), taken over
when it runs out; and the notices processes send each other about tasks (a freed slot for
the earliest turn, "read this task's status now")."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.core.lifecycle import TaskKind
from bot.core.task import Task
from storage.database import Database
from storage.task_rows import UNFINISHED, task_from_row

_NUDGES = "imagine_bot_task_nudge"  # the channel of `nudge`
_SLOTS = "imagine_bot_slot_passed"  # the channel of `pass_slot`

# A task a process may claim (parameters: the process, now): nobody holds it, the process
# itself does, or the replica that does has let its heartbeat run out.
_FREE_FOR = (
    "(claimed_by IS NULL OR claimed_by = ? OR NOT EXISTS (SELECT 1 FROM replicas"
    " WHERE replicas.name = tasks.claimed_by AND replicas.alive_until >= ?))"
)


class ClaimLost(Exception):
    """Nothing was done: the process no longer holds the task's claim (another took it
    over while this one was frozen or cut off)."""


class Claims:
    def __init__(self, database: Database) -> None:
        self._db = database

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
            f"UPDATE tasks SET claimed_by = ? WHERE id = ? AND {UNFINISHED} AND {_FREE_FOR}"
            " RETURNING *",
            (owner, task_id, owner, now),
        )
        return task_from_row(row) if row else None

    async def claimable(self, owner: str, *, now: float) -> list[Task]:
        """Unfinished tasks `owner` may claim: unclaimed, its own, or their replica's
        heartbeat ran out."""
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE {UNFINISHED} AND {_FREE_FOR}", (owner, now)
        )
        # Sorted here: an ORDER BY id would lead SQLite to scan the whole table instead.
        return sorted((task_from_row(row) for row in rows), key=lambda task: task.id)

    async def claimable_ids(self, owner: str, *, now: float) -> dict[int, bool]:
        """`claimable`, as task id → whether `owner` holds it already: two columns, for a
        look every few seconds at however many tasks."""
        rows = await self._db.fetch_all(
            f"SELECT id, claimed_by FROM tasks WHERE {UNFINISHED} AND {_FREE_FOR}",
            (owner, now),
        )
        return {row[0]: row[1] == owner for row in rows}

    async def holds(self, task_id: int, owner: str) -> bool:
        """Whether `owner` still holds its claim on the task (nobody took it over)."""
        return await self.held_until(task_id, owner) is not None

    async def held_until(self, task_id: int, owner: str) -> float | None:
        """Until when `owner` surely holds its claim on the task: its heartbeat's end, before
        which nobody may take the task over (0 if it has written no heartbeat); None if it
        does not hold the claim now."""
        row = await self._db.fetch_one(
            "SELECT replicas.alive_until FROM tasks LEFT JOIN replicas"
            " ON replicas.name = tasks.claimed_by WHERE tasks.id = ? AND tasks.claimed_by = ?",
            (task_id, owner),
        )
        if row is None:
            return None
        return 0.0 if row[0] is None else float(row[0])

    async def taken_from(self, owner: str, task_ids: Sequence[int]) -> set[int]:
        """Which of these unfinished tasks `owner` no longer holds (its heartbeat ran out
        while it could not beat, and another process claimed them)."""
        if not task_ids:
            return set()
        marks = ", ".join("?" for _ in task_ids)
        rows = await self._db.fetch_all(
            f"SELECT id FROM tasks WHERE id IN ({marks}) AND {UNFINISHED}"
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
                f"UPDATE tasks SET claimed_by = NULL WHERE {UNFINISHED} AND claimed_by = ?",
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
