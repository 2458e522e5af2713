"""The task engine: drives every task from its row in the database to a delivered result or a
reported failure, in background workers owned by the engine, never by a handler.

A worker reads the task's state, does the one step that state calls for, records the
new state, and reads again. Because every step starts from what the database says, the
same code serves a fresh task and one resumed after a restart. The steps lean on parts
with one job each: the line (`scheduler.py`) and the tasks waiting in it (`waiting.py`),
the upstream (`upstream.py`), the status message (`status.py`) and the outcome in the chat
(`results.py`); what the engine keeps in memory about a task is one `Job` (`job.py`).
The engine reaches the chat only through its port (`chat.py`), in its own terms: it
imports nothing of Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from bot.core.lifecycle import FailureKind, TaskKind, TaskState
from bot.core.line import LineTooLong
from bot.core.quota import Refusal
from bot.core.task import Caps, Charge, NewTask, Task
from bot.engine.chat import Alerts, ChatMoved, ChatPort, ClaimLost, Sending
from bot.engine.job import ClaimCheck, Job, reload
from bot.engine.pool import Account, Pool
from bot.engine.results import Results
from bot.engine.scheduler import Scheduler
from bot.engine.status import StatusMessages
from bot.engine.timing import RetryPolicy, Timing
from bot.engine.upstream import UpstreamSide
from bot.engine.waiting import UPSTREAM_HAS_IT, LineLoads, WaitingTasks
from bot.ops.logs import task_logger
from bot.ops.metrics import Metrics
from bot.providers import ErrorKind, ProviderError, UpstreamState
from storage.tasks import TaskRepository
from storage.upstream_pace import UpstreamPace

__all__ = ["Engine", "RetryPolicy", "Timing"]

_log = logging.getLogger(__name__)

T = TypeVar("T")


class _InLine:
    """What a step returns when the task joined the line: its worker ends."""


_IN_LINE = _InLine()


class Engine:
    def __init__(
        self,
        *,
        chat: ChatPort,
        tasks: TaskRepository,
        pool: Pool,
        timing: Timing | None = None,
        callback_url: Callable[[Task], str] | None = None,
        alerts: Alerts | None = None,
        metrics: Metrics | None = None,
        scheduler: Scheduler | None = None,
        on_chat_migrated: Callable[[int, int], Awaitable[None]] | None = None,
        owner: str = "engine",
        line_max_wait: float = 0.0,
        clock: Callable[[], float] = time.time,
        image_from_telegram: Callable[[str], Awaitable[str | None]] | None = None,
        status_pace: UpstreamPace | None = None,
        shared_line: bool = False,
        max_held: int = 0,
    ) -> None:
        self._tasks = tasks
        self._owner = owner  # this process's name on the tasks it claims
        # What workers write of their tasks: only while this process holds the claim.
        self._mine = tasks.held_by(owner)
        self._claims = tasks.claims  # who drives which task; notices between processes
        # The same, for the records an upstream slot waits on (a create about to go, a task
        # finished): they go before the rest of the database's line (storage/turns.py).
        self._first = self._mine.ahead_of_the_line()
        self._anyones_first = tasks.ahead_of_the_line()  # unfenced: callbacks, /cancel
        self._max_held = max_held  # unfinished tasks this process drives at once (0: all)
        self._clock = clock  # the wall clock of every record and deadline (a test's own)
        self._timing = timing or Timing()
        self._alerts = alerts
        self._metrics = metrics or Metrics()
        self._pool = pool
        self._scheduler = scheduler or Scheduler(pool, outage_wait=self._timing.outage_wait)
        self._on_chat_migrated = on_chat_migrated
        self._upstream = UpstreamSide(
            tasks=tasks,
            timing=self._timing,
            metrics=self._metrics,
            scheduler=self._scheduler,
            callback_url=callback_url,
            image_from_telegram=image_from_telegram,
            clock=clock,
            shared_pace=status_pace,
        )
        self._loads = LineLoads(
            tasks=tasks, pool=pool, timing=self._timing, clock=clock, max_wait=line_max_wait
        )
        self._status = StatusMessages(
            chat=chat,
            tasks=self._mine,
            cadence=self._timing.status,
            scheduler=self._scheduler,
            unstoppable=self._unstoppable_task,
            wait_at=self._loads.wait_at,
            clock=clock,
        )
        # Those waiting in line: no worker until their turn (`_turn_came`).
        self._waiting = WaitingTasks(
            tasks=tasks,
            pool=pool,
            scheduler=self._scheduler,
            status=self._status,
            timing=self._timing,
            owner=owner,
            clock=clock,
            shared=shared_line,
            on_turn=self._turn_came,
        )
        self._results = Results(
            chat=chat,
            tasks=self._mine,
            status=self._status,
            followups=pool.followups,
            metrics=self._metrics,
            fail=self._fail,
            clock=clock,
        )
        self._jobs: dict[int, Job] = {}  # every task this process holds
        self._workers: dict[int, asyncio.Task[None]] = {}  # those a worker drives now
        self._unstoppable: set[asyncio.Task[Any]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None
        self._stopping = False
        self._beat_at = 0.0  # when this process last wrote its heartbeat (by its clock)

    @property
    def in_flight(self) -> int:
        """Unfinished tasks this process holds: driven by a worker, or waiting in line."""
        return len(self._workers) + len(self._waiting)

    async def start(self) -> None:
        """Resume every unfinished task nobody else holds (what a previous run left), and
        from then on keep this process's claims alive and pick up what others leave."""
        await self._pool.load()  # the accounts' state, as every process shares it
        await self._pool.on_change(self._account_changed)
        # Alive first: the claims this process takes hold while its heartbeat does.
        self._beat_at = self._clock()
        await self._claims.beat(self._owner, until=self._beat_at + self._timing.lease)
        now = self._clock()
        unfinished = await self._claims.claimable(self._owner, now=now)
        # What the upstream works on first (it holds slots), then the line's order; past
        # what this process may drive at once, its own claims are let go for others to take.
        unfinished.sort(key=lambda t: (t.state not in UPSTREAM_HAS_IT, t.turn, t.id))
        room = self._max_held or len(unfinished)
        unfinished, over = unfinished[:room], unfinished[room:]
        if over:
            ours = await self._claims.claimable_ids(self._owner, now=now)
            await self._claims.let_go(self._owner, [t.id for t in over if ours.get(t.id)])
            _log.info("%d unfinished tasks left to other processes (MAX_TASKS_HELD)", len(over))
        if unfinished:
            _log.info("resuming %d unfinished tasks", len(unfinished))
        self._scheduler.restore(
            # A task whose create request was cut short may be running upstream too.
            running={t.id: t.account for t in unfinished if t.state in UPSTREAM_HAS_IT},
            created_at=await self._tasks.submitted_since(self._clock() - 3600),
        )
        for task in unfinished:
            self._spawn(task.id)
        await self._claims.on_nudge(self._nudged)
        await self._waiting.start()
        self._keeper = asyncio.create_task(self._keep_claims(), name="claims")
        self._checker = asyncio.create_task(self._check_accounts(), name="account checks")

    def _account_changed(self, name: str) -> None:
        """Some process moved an account's shared state: read it, and look at the line."""
        refresh = asyncio.create_task(self._refresh_account(name))
        self._unstoppable.add(refresh)  # (kept until done; stopping waits for it)
        refresh.add_done_callback(self._unstoppable.discard)

    async def _refresh_account(self, name: str) -> None:
        try:
            await self._pool.refresh(name)
        except Exception:
            _log.warning("could not read account %s again", name, exc_info=True)
        self._scheduler.look_again()

    async def _check_accounts(self) -> None:
        """While an account is out of rotation, check it every 10–15 s with a call that
        costs nothing (one process of all checks it), and put it back as soon as it answers
        well: the tasks waiting for it go at once (operators hear it is back when it takes
        one). Every account's shared state is read again meanwhile, in case a notice was
        missed."""
        every = self._timing.account_checks[0]
        while True:
            await asyncio.sleep(random.uniform(*self._timing.account_checks))
            try:
                await self._pool.load()
            except Exception:
                _log.warning("could not read the accounts' state", exc_info=True)
            for account in self._pool.accounts:
                try:
                    back = await self._pool.check(account, every=every)
                except Exception:
                    _log.exception("checking account %s failed", account.name)
                    continue
                if back:
                    _log.info("account %s answers well again: back in rotation", account.name)
            self._scheduler.look_again()

    async def _keep_claims(self) -> None:
        """Write this process's heartbeat (its claims hold while it is alive: one row, not
        one per task), let go of tasks another process took over, and pick up the tasks no
        live process holds."""
        every = self._timing.lease / 3
        while True:
            await asyncio.sleep(every)
            try:
                now = self._clock()
                await self._claims.beat(self._owner, until=now + self._timing.lease)
                claimable = await self._claims.claimable_ids(self._owner, now=now)
                held = {task_id for task_id, ours in claimable.items() if ours}
                lost = await self._claims.taken_from(
                    self._owner, [task_id for task_id in self._jobs if task_id not in held]
                )
            except Exception:
                _log.exception("heartbeat not written; trying again")
                if self._clock() - self._beat_at > self._timing.lease * 2 / 3:
                    # Our heartbeat is about to run out: another process may take the tasks
                    # any moment. Stop driving them (they are picked up again, by whoever
                    # holds them, once the database answers).
                    self._let_go(list(self._jobs), "heartbeat not written")
                continue
            self._beat_at = now
            # Claims lost while this process could not beat (a stalled loop, a database
            # away): another process drives those tasks now, and only one may.
            self._let_go(sorted(lost), "taken over by another process")
            # Its own first (a worker that ended early), then the oldest; as many as it may
            # drive at once (MAX_TASKS_HELD): the rest wait, as rows, for any process.
            orphans = sorted(
                (task_id for task_id in claimable if not self._holds(task_id)),
                key=lambda task_id: (not claimable[task_id], task_id),
            )
            taken = [task_id for task_id in orphans if self._spawn(task_id)]
            if taken:
                _log.info("picking up %d tasks no live process holds", len(taken))
            stuck = [task_id for task_id in orphans if claimable[task_id] and task_id not in taken]
            if stuck:  # its own, with no room to drive them: another process may
                with contextlib.suppress(Exception):
                    await self._claims.let_go(self._owner, stuck)

    def _let_go(self, task_ids: Sequence[int], why: str) -> None:
        if task_ids:
            _log.warning("stopping work on %d tasks: %s", len(task_ids), why)
        for task_id in task_ids:
            worker = self._workers.get(task_id)
            if worker is not None:
                worker.cancel()
            if self._waiting.leave(task_id):
                self._jobs.pop(task_id, None)

    async def stop(
        self, grace: float = 5.0, *, drop_queued: Callable[[], None] | None = None
    ) -> None:
        """Stop all workers. Their tasks stay in the database and resume at the next start.

        Waiting (polls, sleeps) stops at once; a message on its way to Telegram is given
        `grace` seconds to arrive and be recorded, so a restart does not send it again.
        `drop_queued` (flood control's) fails the sends still waiting for their turn, which
        are not on their way: they are sent after the restart.
        """
        self._stopping = True
        if self._keeper is not None:
            self._keeper.cancel()
        if self._checker is not None:
            self._checker.cancel()
        for task_id in self._waiting.stop():
            self._jobs.pop(task_id, None)
        await cancel_all(list(self._workers.values()))
        if drop_queued is not None:
            drop_queued()
        if self._unstoppable:
            _, late = await asyncio.wait(self._unstoppable, timeout=grace)
            for send in late:
                send.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._keeper is not None:
            # What this process held is anyone's to pick up at once (a replica, a restart).
            with contextlib.suppress(Exception):
                await self._claims.release_claims(self._owner)
            self._keeper = None

    async def submit(self, new: NewTask, charge: Charge | None = None) -> Task | Refusal:
        """Record a new task (and reserve its cost) and start working on it; returns as soon
        as it is recorded, or the refusal if the chat cannot pay for it."""
        task = await self._tasks.create(new, charge)
        if isinstance(task, Task):
            self._metrics.tasks_created.labels(task.kind).inc()
            self._spawn(task.id)
        return task

    async def line_refusal(self, kind: TaskKind) -> LineTooLong | None:
        """The refusal of a new request of this kind if it would wait in line longer than
        the limit (LINE_MAX_WAIT), counting every replica's tasks; None if it may join."""
        return await self._loads.refusal(kind)

    async def cancel(self, task: Task) -> bool:
        """Cancel a task still waiting for its turn (and refund it); False if it is past that."""
        if task.state is not TaskState.PENDING or not await self._fail(
            task, FailureKind.CANCELLED, None, fenced=False
        ):
            return False
        # Its worker, waiting in line, goes on to report the cancellation.
        self._scheduler.withdraw(task.id, task.chat_id)
        return True

    async def on_callback(self, task: Task, upstream_id: str) -> bool:
        """The upstream says the task changed (the callback's URL secret proved it is the
        upstream speaking, about this task): have its worker read the status now.

        A callback can name an upstream task the bot has not recorded yet: the create
        request's answer is still on its way, or was lost to a crash (see
        `_await_unknown_creation`). The callback then tells which task was created.
        Returns False when no worker of this process is watching that task (it is finished,
        or another replica drives it: that one is told through the database).
        `task` is as the callback's route read it (to check the callback), just now.
        """
        if task.state is TaskState.SUBMITTING and await self._anyones_first.mark_running(
            task.id, upstream_id
        ):
            _tlog(task).info("task %d: upstream task %s, by callback", task.id, upstream_id)
        job = self._jobs.get(task.id)
        if job is None:
            # Another replica may drive it (any replica may receive a callback).
            await self._claims.nudge(task.id)
            return False
        job.nudge.set()
        return True

    def _nudged(self, task_id: int) -> None:
        """Some process heard a callback for this task: if it is ours, read it now."""
        job = self._jobs.get(task_id)
        if job is not None:
            job.nudge.set()

    # --- workers --------------------------------------------------------------------------

    def _spawn(self, task_id: int) -> bool:
        """Start driving the task (its worker claims it first); False if this process does
        not (stopping, driving it already, or driving as many as it may: the task waits
        as a row, unclaimed, for whichever process has room)."""
        if self._stopping or self._holds(task_id):
            return False
        if self._max_held and self.in_flight >= self._max_held:
            return False
        self._start_worker(task_id, None)
        return True

    def _holds(self, task_id: int) -> bool:
        """A worker drives the task, or it waits in this process's line."""
        return task_id in self._workers or task_id in self._waiting

    def _start_worker(self, task_id: int, job: Job | None) -> None:
        worker = asyncio.create_task(self._work(task_id, job), name=f"task-{task_id}")
        self._workers[task_id] = worker
        worker.add_done_callback(lambda ended: self._worker_ended(task_id, ended))

    def _worker_ended(self, task_id: int, worker: asyncio.Task[None]) -> None:
        # Only if it is still the task's worker: one that ended as its task joined the line
        # may end after the task's turn came and the next worker started.
        if self._workers.get(task_id) is worker:
            del self._workers[task_id]

    async def _work(self, task_id: int, job: Job | None) -> None:
        """Drive the task until it ends, or until it waits in line (then its job stays, and
        a worker starts again at its turn). `job`: the task's, as it left the line; None:
        the task is claimed first."""
        if job is None:
            first = await self._claims.claim(task_id, self._owner, now=self._clock())
            if first is None:
                return  # finished, or another process holds it
            if first.state in UPSTREAM_HAS_IT:
                self._scheduler.hold(task_id, first.account)  # it holds a slot of its account
            # Every call to the chat about the task leaves only while the claim is still
            # this process's: one frozen past its lease, whose task another process took
            # over and delivered, sends nothing of what it had queued when it wakes.
            claim = Sending(
                ClaimCheck(
                    self._claims,
                    task_id,
                    self._owner,
                    clock=self._clock,
                    trust=self._timing.claim_trust,
                    margin=self._timing.lease / 4,
                )
            )
            job = self._jobs[task_id] = Job(task_id, claim)
            # The status message goes out beside the upstream work, never in front of it.
            self._status.start(job, first)
        else:
            first = await self._tasks.get(task_id)
        waits = False
        try:
            if first is not None:
                waits = await self._drive(job, first)
        finally:
            if not waits:
                self._jobs.pop(task_id, None)
                # A worker let go of (another process took its task over) may leave while
                # its task holds a slot of this process's line: free it, or the line would
                # count the task as running here for good.
                self._pool.let_go(task_id)
                self._scheduler.release(task_id)

    def _unstoppable_task(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `work` (a Telegram send and the record of it) to its end even if the worker
        that started it is cancelled; `stop()` waits for it."""
        task = asyncio.create_task(work)
        self._unstoppable.add(task)
        task.add_done_callback(self._unstoppable.discard)
        return task

    async def _drive(self, job: Job, first: Task) -> bool:
        """Take the task from state to state; True when it stops to wait in line (no
        worker waits with it), False when the task ended or is no longer this process's."""
        policy = self._timing.step_retry
        failures = 0
        # The task as the database has it: read just now (claimed, or as the last step left
        # it); None when a step cannot tell, and then it is read again.
        fresh: Task | None = first
        while True:
            task = fresh or await self._tasks.get(job.task_id)
            fresh = None
            if task is None or task.state in (TaskState.DELIVERED, TaskState.REPORTED):
                return False
            try:
                stepped = await self._step(job, task)
                if isinstance(stepped, _InLine):
                    return True
                fresh = stepped
                failures = 0
            except asyncio.CancelledError:
                raise
            except ChatMoved as moved:
                # The group became a supergroup: its rows follow it, and the step is redone.
                _tlog(task).info("task %d: chat moved to %d", task.id, moved.new_chat_id)
                if self._on_chat_migrated is not None:
                    await self._on_chat_migrated(task.chat_id, moved.new_chat_id)
            except ClaimLost:
                # Taken over, or this process's heartbeat ran out (then, still its own, the
                # task is picked up again at its next beat).
                _tlog(task).warning("task %d: no longer this process's: let go", task.id)
                return False
            except Exception:
                # Whatever broke, the state in the database is still true: wait, then redo the step.
                failures += 1
                _tlog(task).exception("task %d: step %s failed (%d)", task.id, task.state, failures)
                if failures >= policy.attempts:
                    if not await self._claims.holds(task.id, self._owner):
                        return False  # another process drives it now: its outcome is not ours
                    await self._give_up(task)
                    failures = 0
                    continue
                await asyncio.sleep(_backoff(policy, failures))

    async def _give_up(self, task: Task) -> None:
        if task.state is TaskState.FAILED:
            # Even telling the user failed; stop trying rather than loop forever.
            await self._mine.mark_reported(task.id)
            return
        kind = (
            FailureKind.DELIVERY if task.state is TaskState.DELIVERING else FailureKind.UNAVAILABLE
        )
        await self._fail(task, kind, None)

    async def _step(self, job: Job, task: Task) -> Task | _InLine | None:
        """Take the task one state further; the task as that left it, if known; `_IN_LINE`
        when it joined the line (its worker ends; another starts at its turn)."""
        match task.state:
            case TaskState.PENDING:
                if job.no_account:  # it left the line: no account in rotation can do it
                    job.no_account = False
                    _tlog(task).warning("task %d: no account in rotation can do it", task.id)
                    await self._fail(task, FailureKind.UNAVAILABLE, None)
                    return None
                account, job.admitted = job.admitted, None
                if account is None:
                    # It joins the line, and nothing waits with it: at its turn
                    # (`_turn_came`) a worker starts again.
                    await self._waiting.enter(job, task)
                    return _IN_LINE
                # Once the upstream is asked, its answer must be recorded, shutdown or not.
                return await asyncio.shield(
                    self._unstoppable_task(self._submit(job, task, account))
                )
            case TaskState.SUBMITTING:
                # Only seen after a restart: the create request's outcome is unknown.
                await self._await_unknown_creation(job, task)
            case TaskState.RUNNING:
                return await self._watch(job, task)
            case TaskState.SUCCEEDED:
                return await self._mine.mark_delivering(task.id)
            case TaskState.DELIVERING:
                return await asyncio.shield(
                    self._unstoppable_task(self._results.deliver(job, task))
                )
            case TaskState.FAILED:
                return await asyncio.shield(
                    self._unstoppable_task(self._results.report_failure(job, task))
                )
        return None

    # --- pending → running ------------------------------------------------------------

    def _turn_came(self, task_id: int, job: Job) -> None:
        """The waiting task's turn came (it holds a slot of `job.admitted`), or it left the
        line otherwise (cancelled: the state says what comes next; no account in rotation
        can do it): a worker takes it from here."""
        if self._stopping:
            self._jobs.pop(task_id, None)
            self._scheduler.release(task_id)
            return
        self._start_worker(task_id, job)

    async def _await_unknown_creation(self, job: Job, task: Task) -> None:
        """The process died while the upstream was answering the create request. Asking
        again could make (and bill) a second task: these upstreams neither deduplicate a
        request nor list the tasks an account has. But a task created with a callback URL
        calls it when it ends, naming itself (`on_callback`), so wait for that as long as
        the task could run; without a callback URL, or without a callback, the task is
        reported as interrupted and refunded."""
        account = self._pool.find(task.account)
        if account is None or not self._upstream.expects_callback(account):
            await self._fail(task, FailureKind.INTERRUPTED, None)
            return
        _tlog(task).info("task %d: creation outcome unknown, waiting for a callback", task.id)
        deadline = (task.submitted_at or task.created_at) + self._timing.callback_net.timeout
        while (remaining := deadline - self._clock()) > 0:
            await nudged_within(job.nudge, remaining)
            if (await reload(self._tasks, task)).state is not TaskState.SUBMITTING:
                return  # a callback named the upstream task; it is watched from here on
            job.nudge.clear()
        await self._fail(task, FailureKind.INTERRUPTED, None)

    async def _submit(self, job: Job, task: Task, account: Account) -> Task | None:
        # submitted_at: when the create request left, for the hourly cap and the timeout.
        # The caps are checked again in the database, counting every replica's tasks.
        caps = Caps(account.config.max_concurrent, account.config.max_tasks_per_hour)
        # The request is made first: it may fetch an image from Telegram for the upstream,
        # which must not happen while the task is marked as on its way upstream.
        request = await self._upstream.request(task, account)
        outcome = await self._first.mark_submitting(
            task.id, account.name, at=self._clock(), caps=caps, admit=self._pool.admits(account)
        )
        await self._pool.sent(account, task.id, went=outcome == "sent")
        if outcome != "sent":
            self._scheduler.release(task.id)
            if outcome == "full":  # other replicas' tasks fill it: the task waits on
                self._scheduler.hold_off(account, self._timing.full_elsewhere)
            return None
        try:
            upstream_id = await self._upstream.create(account, request)
        except ProviderError as error:
            await self._create_failed(job, task, account, error)
            return None
        # The upstream's id first (what a restart needs), then the account's news. None when
        # a callback came first and recorded the same upstream task.
        running = await self._first.mark_running(task.id, upstream_id)
        if running is not None:
            _tlog(task, account.name).info("task %d: upstream task %s", task.id, upstream_id)
        if await self._pool.create_succeeded(account):
            # The outage is over: the tasks waiting for this account go now, not when some
            # other task frees a slot.
            self._scheduler.look_again()
            if self._alerts:
                await self._alerts.account_back(account.name)
        return running

    async def _create_failed(
        self, job: Job, task: Task, account: Account, error: ProviderError
    ) -> None:
        """The account did not take the task. Refused before taking it (the account cannot
        work now, or the request never got through): another account in rotation gets it,
        at no cost to anyone. A wrong request fails; one whose outcome is unknown is never
        sent again (a second create could make, and bill, a second task)."""
        log = _tlog(task, account.name)
        log.warning("task %d: %s did not take it: %s", task.id, account.name, error)
        refused = error.kind in (ErrorKind.UNAVAILABLE, ErrorKind.TRANSIENT)
        if refused:
            job.refused_by[account.name] = (self._pool.now(), account.breaker.successes)
        began = await self._pool.create_failed(account, error)
        if error.out_of_credits:
            await self._pool.note_balance(account)  # to tell a top-up by
        if began and self._alerts:
            await self._alerts.account_down(account.name, error)
        if refused:
            try:
                # Back in line: another account takes it, or this one once it is back (the
                # line keeps it for OUTAGE_WAIT at most).
                if await self._first.mark_refused(task.id):
                    log.info("task %d: back in line", task.id)
                    return
            finally:
                self._scheduler.release(task.id)  # once the database says so (`_poll`)
        kind = {
            ErrorKind.REJECTED: FailureKind.REJECTED,
            ErrorKind.UNKNOWN_OUTCOME: FailureKind.INTERRUPTED,
        }.get(error.kind, FailureKind.UNAVAILABLE)
        await self._fail(task, kind, error.message)

    # --- running → succeeded | failed ---------------------------------------------------

    async def _watch(self, job: Job, task: Task) -> Task | None:
        """Poll the upstream until the task ends, keeping the status message current."""
        ticker = asyncio.create_task(self._status.tick(job, task))
        try:
            return await self._poll(job, task)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _poll(self, job: Job, task: Task) -> Task | None:
        """Read the upstream until the task ends: the task as it moved to succeeded; None
        if it failed (or another process moved it first)."""
        assert task.upstream_task_id is not None
        account = self._pool.find(task.account)
        if account is None:
            # The operator took its account out of the pool: nobody can ask about it now.
            await self._fail(task, FailureKind.UNAVAILABLE, None)
            return None
        by_callback = self._upstream.expects_callback(account)
        schedule = self._timing.callback_net if by_callback else self._timing.poll
        started = task.submitted_at or task.created_at
        durations = self._upstream.durations(task.kind)
        # When polling, the first read waits for the quickest recent tasks of this kind:
        # reads are scarce (~10 a second for all tasks), and earlier ones find nothing.
        quickest = None if by_callback else durations.quickest()
        last_seen_running = 0.0
        while True:
            elapsed = self._clock() - started
            if schedule.timed_out(elapsed):
                await self._fail(task, FailureKind.TIMEOUT, None)
                return None
            delay = schedule.delay_after(elapsed, quickest=quickest)
            delay = min(delay, schedule.timeout - elapsed)
            await nudged_within(job.nudge, delay)
            job.nudge.clear()
            try:
                status = await self._upstream.read_status(
                    account, task.upstream_task_id, paced=not by_callback
                )
            except ProviderError as error:
                if error.kind is ErrorKind.NOT_FOUND and elapsed > self._timing.not_found_grace:
                    await self._fail(task, FailureKind.GENERATION, None)
                    return None
                if error.kind is not ErrorKind.NOT_READY:
                    _tlog(task).info("task %d: status read failed: %s", task.id, error)
                if error.retry_after:
                    await asyncio.sleep(error.retry_after)
                continue
            job.seen = status.state
            seen_at = self._clock() - started
            if status.state in (UpstreamState.QUEUED, UpstreamState.WORKING):
                last_seen_running = seen_at
            elif status.state is UpstreamState.SUCCEEDED and not by_callback:
                durations.add(last_seen_running, seen_at)
            if status.state is UpstreamState.SUCCEEDED:
                # Its slot is free once the database says so: the caps are counted there
                # (by every replica), so the line must not hand the slot out before.
                try:
                    return await self._first.mark_succeeded(
                        task.id, status.result_urls, at=self._clock()
                    )
                finally:
                    await self._waiting.free_slot(task)
            if status.state is UpstreamState.FAILED:
                await self._fail(task, FailureKind.GENERATION, status.fail_message)
                return None

    async def _fail(
        self, task: Task, kind: FailureKind, detail: str | None, *, fenced: bool = True
    ) -> bool:
        """Record the failure (the refund goes with it, in one transaction); True if this
        call did. Its slot is free once the failure is recorded (see `_poll`). `fenced`:
        made by the task's worker, so only while this process holds the task (a /cancel,
        from any replica, is not)."""
        tasks = self._first if fenced else self._anyones_first
        try:
            moved = await tasks.mark_failed(task.id, kind, detail, at=self._clock())
        finally:
            await self._waiting.free_slot(task)
        if moved is None:
            return False
        self._metrics.tasks_failed.labels(kind).inc()
        self._metrics.tasks_finished.labels(task.kind, "failed").inc()
        self._metrics.credits_refunded.inc(task.cost)
        return True


def _tlog(task: Task, account: str | None = None) -> logging.LoggerAdapter[logging.Logger]:
    return task_logger(_log, task.id, task.chat_id, account or task.account)


def _backoff(policy: RetryPolicy, failures: int) -> float:
    ceiling = min(policy.maximum, policy.initial * 2.0 ** (failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def nudged_within(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event` at most `seconds`; True if it was set. A cancellation that comes as
    the wait ends is never lost (Python 3.11's `asyncio.wait_for` can drop one)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_all(tasks: Sequence[asyncio.Task[Any]], every: float = 0.5) -> None:
    """Cancel `tasks` and wait for them to end, cancelling again those still running after
    `every` seconds: a library that swallows one cancellation (one arriving just as a
    `wait_for` inside it ends) must not keep a stopping bot alive."""
    pending = [task for task in tasks if not task.done()]
    while pending:
        for task in pending:
            task.cancel()
        done, still = await asyncio.wait(pending, timeout=every)
        for task in done:
            if not task.cancelled():
                task.exception()  # seen: an error on the way out is not worth a warning
        pending = list(still)
