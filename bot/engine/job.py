"""What the engine keeps in memory about one task this process holds: while a worker drives
it, and while it waits in line (then no worker does: the line has the task, and one loop
keeps every waiting task's status message). The task itself is in the database; this is one
object per task, dropped when the process lets the task go or it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.task import Task
from bot.engine.chat import Sending, StatusView
from bot.engine.pool import Account
from bot.providers import UpstreamState
from storage.claims import Claims
from storage.tasks import TaskRepository


@dataclass(eq=False)
class Job:
    task_id: int
    # How its calls to the chat go: under this process's claim of the task.
    sending: Sending
    # Set by a callback: "look now".
    nudge: asyncio.Event = field(default_factory=asyncio.Event)
    # The upstream's state as last read, for the status message's text.
    seen: UpstreamState | None = None
    # The status message's post (beside the upstream work, never in front of it), how it
    # goes (`gone` once it left), and what the message says now.
    status_post: asyncio.Task[None] | None = None
    status_sending: Sending | None = None
    status_shown: StatusView | None = None
    # Accounts that refused its create (it went back in line): when each last did, and its
    # count of creates taken then (`Need.refused_by`).
    refused_by: dict[str, tuple[float, int]] = field(default_factory=dict)
    # When it first joined the line (by the pool's clock).
    queued_since: float | None = None
    # While it waits in line: the task as it joined (its chat, for its status message), the
    # place shown (and whether as an outage), when its place may be edited again (by the
    # loop's clock), and the edit on its way, if any.
    waiting: Task | None = None
    place_shown: tuple[int, bool] | None = None
    place_due: float = 0.0
    place_edit: asyncio.Task[None] | None = None
    # How it left the line: the account whose slot it holds now, or no account could take it.
    admitted: Account | None = None
    no_account: bool = False


class ClaimCheck:
    """Whether a call about a task may still leave for the chat: asked as each call leaves
    (and once its moment is booked). Only while this process holds the task's claim and its
    heartbeat has more than `margin` to run, before which nobody may take the task over (so
    a process frozen past its heartbeat, or about to run out of it, sends nothing until it
    has beaten again and found the task still its own; another may be taking it over). The
    database's answer is trusted for `trust` seconds (less than `margin`), then asked again."""

    def __init__(
        self,
        claims: Claims,
        task_id: int,
        owner: str,
        *,
        clock: Callable[[], float],
        trust: float,
        margin: float,
    ) -> None:
        self._claims = claims
        self._task_id = task_id
        self._owner = owner
        self._clock = clock
        self._trust = trust
        self._margin = margin
        self._sure_until = float("-inf")

    async def __call__(self) -> bool:
        asked_at = self._clock()
        if asked_at < self._sure_until:
            return True
        held_until = await self._claims.held_until(self._task_id, self._owner)
        if held_until is None or held_until - self._margin <= asked_at:
            self._sure_until = float("-inf")
            return False
        self._sure_until = min(asked_at + self._trust, held_until - self._margin)
        return True


async def reload(tasks: TaskRepository, task: Task) -> Task:
    """The task as the database has it now."""
    fresh = await tasks.get(task.id)
    assert fresh is not None
    return fresh
