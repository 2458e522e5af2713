"""The life of a generation task: its states, the moves between them, and its clocks.

Pure: the storage layer enforces these moves with conditional UPDATEs, the engine
decides them with the functions here.

    pending ──► submitting ──► running ──► succeeded ──► delivering ──► delivered
       │             │            │                          │
       └─────────────┴────────────┴──────► failed ◄──────────┘
                                              │
                                              ▼
                                           reported

A state is written before the side effect it leads to: `submitting` before the upstream
is asked to create the task, `delivering` before the album is sent, `failed` before the
user is told. After a crash, the state says exactly what is left to do.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class TaskState(StrEnum):
    PENDING = "pending"  # recorded; the upstream has not been asked yet
    SUBMITTING = "submitting"  # the create request is (or was, at a crash) in flight
    RUNNING = "running"  # the upstream accepted it and has an id for it
    SUCCEEDED = "succeeded"  # result URLs recorded; not yet delivered
    DELIVERING = "delivering"  # one worker claimed delivery
    DELIVERED = "delivered"  # final: the user has the result
    FAILED = "failed"  # failure recorded; the user has not been told yet
    REPORTED = "reported"  # final: the user was told of the failure


class TaskKind(StrEnum):
    TEXT_TO_IMAGE = "text_to_image"
    IMAGE_TO_VIDEO = "image_to_video"
    TEXT_TO_VIDEO = "text_to_video"
    UPSCALE = "upscale"


class AnimateMode(StrEnum):
    FUN = "fun"
    NORMAL = "normal"
    SPICY = "spicy"


class FailureKind(StrEnum):
    GENERATION = "generation"  # the upstream ran it and it failed (content, model error)
    REJECTED = "rejected"  # the upstream refused the request (validation)
    UNAVAILABLE = "unavailable"  # the service cannot take work now (auth, credits, outage)
    TIMEOUT = "timeout"  # no outcome within the task timeout
    DELIVERY = "delivery"  # made, but Telegram would not take it
    INTERRUPTED = "interrupted"  # a restart hit mid-creation; outcome unknown
    CANCELLED = "cancelled"  # the user cancelled it while it waited in line


TRANSITIONS: Final[dict[TaskState, frozenset[TaskState]]] = {
    TaskState.PENDING: frozenset({TaskState.SUBMITTING, TaskState.FAILED}),
    # Back to pending: the account refused the create before taking it (another may not).
    TaskState.SUBMITTING: frozenset({TaskState.RUNNING, TaskState.PENDING, TaskState.FAILED}),
    TaskState.RUNNING: frozenset({TaskState.SUCCEEDED, TaskState.FAILED}),
    TaskState.SUCCEEDED: frozenset({TaskState.DELIVERING}),
    TaskState.DELIVERING: frozenset({TaskState.DELIVERED, TaskState.FAILED}),
    TaskState.DELIVERED: frozenset(),
    TaskState.FAILED: frozenset({TaskState.REPORTED}),
    TaskState.REPORTED: frozenset(),
}

FINAL_STATES: Final = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def sources_of(target: TaskState) -> frozenset[TaskState]:
    """The states a task may move to `target` from."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """When to ask the upstream for a task's status.

    The upstream's own advice: every 2–3 s for the first 30 s, every 5–10 s up to two
    minutes, then every 15–30 s, and give up after 10–15 minutes. Most images are done in
    5–15 s, so the first look comes early and the fast phase is dense.
    """

    first: float = 2.0
    fast: float = 2.0
    fast_until: float = 30.0
    medium: float = 6.0
    medium_until: float = 120.0
    slow: float = 15.0
    timeout: float = 15 * 60.0

    def delay_after(self, elapsed: float, *, quickest: float | None = None) -> float:
        """Seconds to wait before the next status read, `elapsed` seconds after creation.

        `quickest`: by when the quickest recent tasks of this kind were done, if known; the
        first read waits for it (up to the end of the fast phase), since any read before
        it would almost surely find the task still running."""
        first = self.first if quickest is None else min(max(self.first, quickest), self.fast_until)
        if elapsed < first:
            return first - elapsed
        if elapsed < self.fast_until:
            return self.fast
        if elapsed < self.medium_until:
            return self.medium
        return self.slow

    def timed_out(self, elapsed: float) -> bool:
        return elapsed >= self.timeout


class RecentDurations:
    """How long the last tasks of one kind took upstream, as seen by polling: a task seen
    running at `t1` and done at `t2` ended somewhere between, so the midpoint counts."""

    def __init__(self, keep: int = 50, enough: int = 10) -> None:
        self._seconds: deque[float] = deque(maxlen=keep)
        self._enough = enough

    def add(self, last_seen_running: float, seen_done: float) -> None:
        self._seconds.append((last_seen_running + seen_done) / 2)

    def quickest(self) -> float | None:
        """The duration the quickest tenth of recent tasks stayed under; None until enough
        tasks are known for that to mean anything."""
        if len(self._seconds) < self._enough:
            return None
        ordered = sorted(self._seconds)
        return ordered[len(ordered) // 10]


@dataclass(frozen=True, slots=True)
class StatusCadence:
    """How often the status message is edited: Telegram allows about 20 messages a minute
    in a group, and edits count, so groups get a slower clock than private chats."""

    private: float = 4.0  # the engine adds up to half again: 4–6 s, 10–15 s
    group: float = 10.0

    def interval(self, *, is_group: bool) -> float:
        return self.group if is_group else self.private
