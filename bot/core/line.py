"""The line's honest limit: how long a new request would wait for the upstream, from what
the whole cluster has in hand, and the refusal when that is past the limit (LINE_MAX_WAIT).

Plain arithmetic on counts the database gives (tasks waiting, tasks the upstream works on,
creates in the last hour, every replica's together) and the accounts' caps: a request
waits for the tasks ahead of it to get a slot, a slot frees once a task's time is up, and
no account takes more than its hourly cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.lifecycle import TaskKind

HOUR = 3600.0

# How long a task of each kind takes upstream until the bot has seen enough of them (the
# resellers' own figures: images in 10-30 s, videos in about a minute).
TYPICAL_SECONDS = {
    TaskKind.TEXT_TO_IMAGE: 20.0,
    TaskKind.UPSCALE: 20.0,
    TaskKind.TEXT_TO_VIDEO: 60.0,
    TaskKind.IMAGE_TO_VIDEO: 60.0,
}


@dataclass(frozen=True, slots=True)
class LineLoad:
    """What the cluster has in hand now, and what its accounts in rotation allow."""

    waiting: int  # tasks in line
    running: int  # tasks the upstream works on (every account's)
    created_last_hour: int  # creates in the rolling hour (every account's)
    slots: int  # tasks the accounts in rotation take at once, together
    per_hour: int  # creates they take per rolling hour, together


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A request refused, unrecorded and free, because it would wait `wait` seconds."""

    wait: float


def expected_wait(load: LineLoad, task_seconds: float) -> float:
    """Seconds a request asked now would wait for its create to leave."""
    if load.slots <= 0 or load.per_hour <= 0:
        return 0.0  # no account in rotation: the outage's own wait (OUTAGE_WAIT) applies
    # By slots: the tasks ahead (and this one) start as slots free, one task's time apart.
    ahead = load.waiting + load.running + 1 - load.slots
    by_slots = max(0, ahead) / load.slots * task_seconds
    # By the hourly caps: past what the hour has left, creates go at the caps' rate.
    over = load.waiting + 1 - max(0, load.per_hour - load.created_last_hour)
    by_hour = max(0, over) / load.per_hour * HOUR
    return max(by_slots, by_hour)


def wait_at_place(load: LineLoad, place: int, task_seconds: float) -> float:
    """Seconds a task at `place` in the line (1: next) waits for its create to leave: as a
    new request would with only the `place - 1` tasks ahead of it waiting. The tasks ahead
    are counted as taking as long as this one's kind."""
    ahead = LineLoad(
        waiting=max(0, place - 1),
        running=load.running,
        created_last_hour=load.created_last_hour,
        slots=load.slots,
        per_hour=load.per_hour,
    )
    return expected_wait(ahead, task_seconds)


def admit_to_line(load: LineLoad, task_seconds: float, limit: float) -> LineTooLong | None:
    """None if a new request may join the line (`limit` 0: always); the refusal if not."""
    wait = expected_wait(load, task_seconds)
    return LineTooLong(wait) if limit > 0 and wait > limit else None


def turn_for(*, head: int | None, last_of_chat: int | None, latest: int) -> int:
    """A new task's turn, so that chats take turns over the whole line: one task of each
    chat a round, each chat's in the order asked. `head`: the earliest turn waiting (None if
    none is); `last_of_chat`: the chat's latest turn waiting; `latest`: the newest task's."""
    base = head if head is not None else latest
    return base if last_of_chat is None else max(base, last_of_chat + 1)
