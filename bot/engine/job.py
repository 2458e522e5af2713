"""What the engine keeps in memory about one task while a worker drives it. The task itself
is in SQLite; this is one object per task, dropped when its worker ends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.providers import UpstreamState
from bot.telegram.delivery import Placement
from bot.telegram.flood import Ticket
from storage.tasks import Task, TaskRepository


@dataclass(eq=False)
class Job:
    task_id: int
    # Set by a callback: "look now".
    nudge: asyncio.Event = field(default_factory=asyncio.Event)
    # The upstream's state as last read, for the status message's text.
    seen: UpstreamState | None = None
    # The status message's post (beside the upstream work, never in front of it), the
    # flood-control ticket it waits with, and what the message says now.
    status_post: asyncio.Task[None] | None = None
    status_ticket: Ticket | None = None
    status_shown: str | None = None
    # Accounts that refused its create (it went back in line): when each last did, and its
    # count of creates taken then (`Need.refused_by`).
    refused_by: dict[str, tuple[float, int]] = field(default_factory=dict)
    # When it first joined the line (by the pool's clock).
    queued_since: float | None = None


async def reload(tasks: TaskRepository, task: Task) -> Task:
    """The task as SQLite has it now."""
    fresh = await tasks.get(task.id)
    assert fresh is not None
    return fresh


def placement(task: Task, *, reply_to: int | None = None) -> Placement:
    """Where the task's messages go: its chat and topic, answering its request."""
    return Placement(
        chat_id=task.chat_id,
        message_thread_id=task.message_thread_id,
        reply_to=reply_to if reply_to is not None else task.request_message_id,
    )
