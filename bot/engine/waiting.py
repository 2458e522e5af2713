"""The tasks waiting in line, as the engine holds them: how long the whole line is
(`LineLoads`: the refusal past `LINE_MAX_WAIT`, the wait shown beside a place) and this
process's waiting tasks (`WaitingTasks`).

A waiting task is a row (`pending`), an entry in the line (`scheduler.py`) and its `Job`:
no worker waits with it. At its turn the engine starts a worker again, with the account
whose slot the task then holds. One loop keeps every waiting task's status message showing
its place; with several replicas another reads the whole line's places from the database,
and a slot this process frees goes to the earliest turn in the whole line, whichever
replica drives that task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.core.lifecycle import TaskKind, TaskState
from bot.core.line import HOUR, TYPICAL_SECONDS, LineLoad, LineTooLong, admit_to_line, wait_at_place
from bot.core.task import Task
from bot.engine.job import Job
from bot.engine.pool import Account, Need, Pool
from bot.engine.scheduler import NoAccount, Scheduler
from bot.engine.status import StatusMessages
from bot.engine.timing import Timing
from bot.ops.logs import task_logger
from storage.tasks import TaskRepository

__all__ = ["UPSTREAM_HAS_IT", "LineLoads", "WaitingTasks"]

_log = logging.getLogger(__name__)

# States in which the upstream may be working on the task: it holds one of the line's slots.
UPSTREAM_HAS_IT = frozenset({TaskState.SUBMITTING, TaskState.RUNNING})


class LineLoads:
    """What the whole line holds (every replica's tasks, from the database): a new request's
    refusal when it would wait longer than the limit, and the wait shown beside a place."""

    def __init__(
        self,
        *,
        tasks: TaskRepository,
        pool: Pool,
        timing: Timing,
        clock: Callable[[], float],
        max_wait: float,
    ) -> None:
        self._tasks = tasks
        self._pool = pool
        self._timing = timing
        self._clock = clock
        self._max_wait = max_wait  # LINE_MAX_WAIT (0: no limit)
        # The load for each kind, as last read (when, by the loop's clock), for the waits
        # shown beside places.
        self._loads: dict[TaskKind, tuple[float, LineLoad, float]] = {}

    async def refusal(self, kind: TaskKind) -> LineTooLong | None:
        """The refusal of a new request of this kind if it would wait in line longer than
        the limit (LINE_MAX_WAIT), counting every replica's tasks; None if it may join."""
        if self._max_wait <= 0:
            return None
        load, seconds = await self._load(kind)
        return admit_to_line(load, seconds, self._max_wait)

    async def wait_at(self, task: Task, place: int) -> float:
        """Seconds the task, at `place` in the line, can expect to wait; the line's load is
        read at most once per `Timing.places` for each kind, however many tasks wait."""
        now = asyncio.get_running_loop().time()
        known = self._loads.get(task.kind)
        if known is None or now - known[0] > self._timing.places:
            load, seconds = await self._load(task.kind)
            known = self._loads[task.kind] = (now, load, seconds)
        return wait_at_place(known[1], place, known[2])

    async def _load(self, kind: TaskKind) -> tuple[LineLoad, float]:
        """What the whole line holds for tasks of this kind, and how long one such task
        takes (the recent median, or typical)."""
        now = self._pool.now()
        open_ = [a for a in self._pool.capable(Need(kind)) if a.in_rotation(now)]
        counts = await self._tasks.count_unfinished()
        load = LineLoad(
            waiting=counts.get(TaskState.PENDING, 0),
            running=sum(counts.get(state, 0) for state in UPSTREAM_HAS_IT),
            created_last_hour=await self._tasks.created_since(
                [a.name for a in open_], self._clock() - HOUR
            ),
            slots=sum(a.config.max_concurrent for a in open_),
            per_hour=sum(a.config.max_tasks_per_hour for a in open_),
        )
        seconds = await self._tasks.recent_seconds(kind) or TYPICAL_SECONDS[kind]
        return load, seconds


class WaitingTasks:
    """This process's tasks waiting in line, each with its job; `on_turn(task_id, job)` is
    told when a task's turn came, or it left the line otherwise (cancelled, or no account in
    rotation can do it: `job` says which), and starts its worker."""

    def __init__(
        self,
        *,
        tasks: TaskRepository,
        pool: Pool,
        scheduler: Scheduler,
        status: StatusMessages,
        timing: Timing,
        owner: str,
        clock: Callable[[], float],
        shared: bool,
        on_turn: Callable[[int, Job], None],
    ) -> None:
        self._tasks = tasks
        self._claims = tasks.claims
        self._pool = pool
        self._scheduler = scheduler
        self._status = status
        self._timing = timing
        self._owner = owner
        self._clock = clock
        self._shared = shared  # other replicas' tasks wait in the line too
        self._on_turn = on_turn
        self._jobs: dict[int, Job] = {}
        self._entered = asyncio.Event()  # a task joined the line: the painter looks
        self._loops: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._jobs

    async def start(self) -> None:
        """Keep the waiting tasks' places shown; with several replicas, also read the whole
        line's places and take the slots other replicas pass to this one's tasks."""
        self._loops.append(asyncio.create_task(self._paint_places(), name="places shown"))
        if self._shared:
            await self._claims.on_slot(self._slot_passed)
            self._loops.append(asyncio.create_task(self._place_in_line(), name="places"))

    def stop(self) -> list[int]:
        """Stop the loops and let every waiting task go; returns their ids."""
        for loop in self._loops:
            loop.cancel()
        self._loops.clear()
        return [task_id for task_id in list(self._jobs) if self.leave(task_id)]

    async def enter(self, job: Job, task: Task) -> None:
        """The task joins the line, and nothing waits with it: at its turn `on_turn` is
        told, with the account whose slot it holds in `job.admitted`. Waiting in line can
        stop any time: the line is the pending rows in the database."""
        if job.queued_since is None:
            job.queued_since = self._pool.now()
        need = await self._need(job, task)
        job.waiting = task
        self._jobs[task.id] = job
        self._entered.set()
        admitted = self._scheduler.enter(task.id, task.chat_id, need, turn=task.turn)
        admitted.add_done_callback(lambda turn: self._left_line(task.id, turn))

    def leave(self, task_id: int) -> bool:
        """This process lets a waiting task go (taken over, or stopping); True if it
        waited here."""
        job = self._jobs.pop(task_id, None)
        if job is None:
            return False
        if job.place_edit is not None:
            job.place_edit.cancel()
        if job.waiting is not None:
            self._scheduler.leave(task_id, job.waiting.chat_id)
        return True

    async def free_slot(self, task: Task) -> None:
        """The upstream is done with the task: its slot is free. With several processes, it
        goes to the earliest turn waiting, whichever process drives that task: if another's
        is earlier than this line's head, that process is told, and this line leaves the
        account alone a moment (`Timing.baton`) so the other takes the slot."""
        account = self._scheduler.holding(task.id)
        try:
            if account is not None and self._shared:
                kinds = [k for k in TaskKind if account in self._pool.capable(Need(k))]
                earliest = await self._claims.earliest_waiting_elsewhere(
                    self._owner, kinds, now=self._clock()
                )
                head = self._scheduler.head()
                if earliest is not None and (head is None or earliest[0] < head):
                    self._scheduler.hold_off(account, self._timing.baton)
                    await self._claims.pass_slot(earliest[1], account.name)
        except Exception:
            log = task_logger(_log, task.id, task.chat_id, task.account)
            log.warning("task %d: slot not passed on", task.id, exc_info=True)
        finally:
            self._scheduler.release(task.id)

    def _slot_passed(self, to: str, name: str) -> None:
        """Some process freed a slot of this account for this process's earliest task."""
        account = self._pool.find(name)
        if to == self._owner and account is not None:
            self._scheduler.slot_passed(account)

    def _left_line(self, task_id: int, turn: asyncio.Future[Account]) -> None:
        job = self._jobs.pop(task_id, None)
        if job is None or turn.cancelled():
            return  # let go of (`leave`), or this process stops
        if job.place_edit is not None:
            job.place_edit.cancel()
        job.waiting, job.place_shown = None, None
        error = turn.exception()
        if isinstance(error, NoAccount):
            job.no_account = True
        elif error is None:
            job.admitted = turn.result()
        # (Withdrawn: cancelled, and recorded as such; the worker reports it.)
        self._on_turn(task_id, job)

    async def _paint_places(self) -> None:
        """One loop for the status messages of every task waiting in this process's line:
        each shows its place as the line moves (`StatusMessages.show_place`), however many
        wait."""
        while True:
            again = [self._status.show_place(job) for job in list(self._jobs.values())]
            soonest = min((delay for delay in again if delay is not None), default=None)
            self._entered.clear()
            moved = asyncio.ensure_future(self._scheduler.changed())
            entered = asyncio.ensure_future(self._entered.wait())
            try:
                await asyncio.wait({moved, entered}, timeout=soonest, return_when="FIRST_COMPLETED")
            finally:
                moved.cancel()
                entered.cancel()

    async def _place_in_line(self) -> None:
        """With several replicas, the places shown are the whole line's: read from the
        database every few seconds while tasks of this replica's wait."""
        while True:
            await asyncio.sleep(self._timing.places)
            if not self._scheduler.waiting():
                continue
            try:
                self._scheduler.set_places(await self._tasks.places())
            except Exception:
                _log.warning("could not read the places in line", exc_info=True)

    async def _need(self, job: Job, task: Task) -> Need:
        """What the task asks of an account: a follow-up is pinned to its source's account,
        and an animation may go elsewhere with the image's URL."""
        pinned, by_url = None, False
        if task.source_task_id is not None:
            source = await self._tasks.get(task.source_task_id)
            if source is not None:
                pinned = source.account
                by_url = (
                    task.kind is TaskKind.IMAGE_TO_VIDEO
                    and task.source_index is not None
                    and task.source_index < len(source.result_urls)
                )
        return Need(
            kind=task.kind,
            own_image=task.image_url is not None,
            pinned=pinned,
            by_url=by_url,
            refused_by=tuple((name, *when) for name, when in job.refused_by.items()),
            queued_since=job.queued_since,
        )
