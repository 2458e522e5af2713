"""The task engine: drives every task from its row in SQLite to a delivered result or a
reported failure, in background workers owned by the engine, never by a handler.

A worker reads the task's state, does the one step that state calls for, records the
new state, and reads again. Because every step starts from what the database says, the
same code serves a fresh task and one resumed after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiolimiter import AsyncLimiter
from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.core.catalog import Lang, text
from bot.core.lifecycle import (
    FailureKind,
    PollSchedule,
    RecentDurations,
    StatusCadence,
    TaskKind,
    TaskState,
)
from bot.core.quota import Refusal
from bot.engine.scheduler import Scheduler, Withdrawn
from bot.ops.logs import task_logger
from bot.ops.metrics import Metrics
from bot.providers import (
    ErrorKind,
    GenerationRequest,
    Provider,
    ProviderError,
    UpstreamState,
)
from bot.telegram import flood, rendering
from bot.telegram.alerts import OperatorAlerts
from bot.telegram.delivery import Deliverer, MediaKind, Placement, media_kind
from storage.tasks import Charge, NewTask, Task, TaskRepository

_log = logging.getLogger(__name__)
T = TypeVar("T")

# A task shows a status message while the user is waiting for the upstream.
_STATUS_SHOWN_IN = frozenset({TaskState.PENDING, TaskState.RUNNING})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    initial: float = 1.0
    maximum: float = 20.0


@dataclass(frozen=True, slots=True)
class Timing:
    """Every clock the engine runs on; tests pass a fast one."""

    poll: PollSchedule = field(default_factory=PollSchedule)
    # With callbacks the poll is only a net for a callback that never comes: sparse.
    callback_net: PollSchedule = field(
        default_factory=lambda: PollSchedule(
            first=20.0, fast=10.0, fast_until=120.0, medium=20.0, medium_until=300.0, slow=30.0
        )
    )
    status: StatusCadence = field(default_factory=StatusCadence)
    create_retry: RetryPolicy = field(default_factory=RetryPolicy)
    step_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(5, 2.0, 60.0))
    not_found_grace: float = 60.0  # how long a 404 right after creation is waited out
    # Status reads, as a leaky bucket (capacity, seconds to drain it): the upstream allows
    # about 10 a second per key, and 2 + 8/s never puts more than 10 in any second.
    status_reads: tuple[float, float] = (2, 0.25)


class Engine:
    def __init__(
        self,
        *,
        bot: Bot,
        tasks: TaskRepository,
        provider: Provider,
        deliverer: Deliverer,
        timing: Timing | None = None,
        callback_url: Callable[[Task], str] | None = None,
        alerts: OperatorAlerts | None = None,
        metrics: Metrics | None = None,
        scheduler: Scheduler | None = None,
        on_chat_migrated: Callable[[int, int], Awaitable[None]] | None = None,
        telegram_busy: Callable[[int], bool] = lambda chat_id: False,
    ) -> None:
        self._bot = bot
        self._tasks = tasks
        self._provider = provider
        self._deliverer = deliverer
        self._timing = timing or Timing()
        self._callback_url = callback_url
        self._alerts = alerts
        self._metrics = metrics or Metrics()
        self._scheduler = scheduler or Scheduler(max_running=1_000_000, max_per_hour=1_000_000)
        self._on_chat_migrated = on_chat_migrated
        self._telegram_busy = telegram_busy
        self._status_reads = AsyncLimiter(*self._timing.status_reads)
        # Set by a callback: "look now" for the task's worker.
        self._nudges: dict[int, asyncio.Event] = {}
        self._durations: dict[TaskKind, RecentDurations] = {}
        self._status_tickets: dict[int, flood.Ticket] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._status_posts: dict[int, asyncio.Task[None]] = {}
        self._status_shown: dict[int, str] = {}
        self._chat_turns: dict[int, _ChatTurn] = {}
        self._unstoppable: set[asyncio.Task[None]] = set()
        self._stopping = False

    def _tlog(self, task: Task) -> logging.LoggerAdapter[logging.Logger]:
        return task_logger(_log, task.id, task.chat_id, task.provider)

    @property
    def in_flight(self) -> int:
        return len(self._workers)

    async def start(self) -> None:
        """Resume every task a previous run left unfinished."""
        unfinished = await self._tasks.unfinished()
        if unfinished:
            _log.info("resuming %d unfinished tasks", len(unfinished))
        self._scheduler.restore(
            # A task whose create request was cut short may be running upstream too.
            running=[
                t.id for t in unfinished if t.state in (TaskState.SUBMITTING, TaskState.RUNNING)
            ],
            created_at=await self._tasks.submitted_since(time.time() - 3600),
        )
        for task in unfinished:
            self._spawn(task.id)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop all workers. Their tasks stay in SQLite and resume at the next start.

        Waiting (polls, sleeps) stops at once; a message on its way to Telegram is given
        `grace` seconds to arrive and be recorded, so a restart does not send it again.
        """
        self._stopping = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._unstoppable:
            _, late = await asyncio.wait(self._unstoppable, timeout=grace)
            for send in late:
                send.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def submit(self, new: NewTask, charge: Charge | None = None) -> Task | Refusal:
        """Record a new task (and reserve its cost) and start working on it; returns as soon
        as it is recorded, or the refusal if the chat cannot pay for it."""
        task = await self._tasks.create(new, charge)
        if isinstance(task, Task):
            self._metrics.tasks_created.labels(task.kind).inc()
            self._spawn(task.id)
        return task

    async def cancel(self, task: Task) -> bool:
        """Cancel a task still waiting for its turn (and refund it); False if it is past that."""
        if task.state is not TaskState.PENDING or not await self._fail(
            task, FailureKind.CANCELLED, None
        ):
            return False
        # Its worker, waiting in line, goes on to report the cancellation.
        self._scheduler.withdraw(task.id, task.chat_id)
        return True

    async def on_callback(self, task_id: int, upstream_id: str) -> bool:
        """The upstream says the task changed (the callback's URL secret proved it is the
        upstream speaking, about this task): have its worker read the status now.

        A callback can name an upstream task the bot has not recorded yet: the create
        request's answer is still on its way, or was lost to a crash (see
        `_await_unknown_creation`). The callback then tells which task was created.
        Returns False when no worker is watching that task (it is finished, or unknown).
        """
        task = await self._tasks.get(task_id)
        if (
            task is not None
            and task.state is TaskState.SUBMITTING
            and await self._tasks.mark_running(task_id, upstream_id)
        ):
            self._tlog(task).info("task %d: upstream task %s, by callback", task_id, upstream_id)
        nudge = self._nudges.get(task_id)
        if nudge is None:
            return False
        nudge.set()
        return True

    def _spawn(self, task_id: int) -> None:
        if self._stopping or task_id in self._workers:
            return
        worker = asyncio.create_task(self._work(task_id), name=f"task-{task_id}")
        self._workers[task_id] = worker
        worker.add_done_callback(lambda _: self._workers.pop(task_id, None))

    async def _work(self, task_id: int) -> None:
        first = await self._tasks.get(task_id)
        if first is None:
            return
        # The status message goes out beside the upstream work, never in front of it.
        self._status_posts[task_id] = self._unstoppable_task(self._post_status(first))
        self._nudges[task_id] = asyncio.Event()
        try:
            await self._drive(task_id)
        finally:
            del self._status_posts[task_id]
            self._status_tickets.pop(task_id, None)
            del self._nudges[task_id]
            self._status_shown.pop(task_id, None)

    def _unstoppable_task(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` (a Telegram send and the record of it) to its end even if the worker
        that started it is cancelled; `stop()` waits for it."""
        task = asyncio.create_task(work)
        self._unstoppable.add(task)
        task.add_done_callback(self._unstoppable.discard)
        return task

    async def _drive(self, task_id: int) -> None:
        policy = self._timing.step_retry
        failures = 0
        while True:
            task = await self._tasks.get(task_id)
            if task is None or task.state in (TaskState.DELIVERED, TaskState.REPORTED):
                return
            try:
                await self._step(task)
                failures = 0
            except asyncio.CancelledError:
                raise
            except ChatMigrated as moved:
                # The group became a supergroup: its rows follow it, and the step is redone.
                self._tlog(task).info("task %d: chat moved to %d", task.id, moved.new_chat_id)
                if self._on_chat_migrated is not None:
                    await self._on_chat_migrated(task.chat_id, moved.new_chat_id)
            except Exception:
                # Whatever broke, the state in SQLite is still true: wait, then redo the step.
                failures += 1
                self._tlog(task).exception(
                    "task %d: step %s failed (%d)", task.id, task.state, failures
                )
                if failures >= policy.attempts:
                    await self._give_up(task)
                    failures = 0
                    continue
                await asyncio.sleep(_backoff(policy, failures))

    async def _give_up(self, task: Task) -> None:
        if task.state is TaskState.FAILED:
            # Even telling the user failed; stop trying rather than loop forever.
            await self._tasks.mark_reported(task.id)
            return
        kind = (
            FailureKind.DELIVERY if task.state is TaskState.DELIVERING else FailureKind.UNAVAILABLE
        )
        await self._fail(task, kind, None)

    async def _step(self, task: Task) -> None:
        match task.state:
            case TaskState.PENDING:
                # Waiting in line can stop any time: the line is the pending rows in SQLite.
                await self._wait_turn(task)
                # Once the upstream is asked, its answer must be recorded, shutdown or not.
                await asyncio.shield(self._unstoppable_task(self._submit(task)))
            case TaskState.SUBMITTING:
                # Only seen after a restart: the create request's outcome is unknown.
                await self._await_unknown_creation(task)
            case TaskState.RUNNING:
                await self._watch(task)
            case TaskState.SUCCEEDED:
                await self._tasks.mark_delivering(task.id)
            case TaskState.DELIVERING:
                await asyncio.shield(self._unstoppable_task(self._deliver(task)))
            case TaskState.FAILED:
                await asyncio.shield(self._unstoppable_task(self._report_failure(task)))

    # --- pending → running ------------------------------------------------------------

    async def _wait_turn(self, task: Task) -> None:
        """Wait for the scheduler to admit the task; meanwhile, beside it (never in its way),
        keep the status message showing the task's place in line."""
        places = asyncio.create_task(self._show_places(task))
        try:
            with contextlib.suppress(Withdrawn):  # cancelled: the state says what comes next
                await self._scheduler.admit(task.id, task.chat_id)
        finally:
            places.cancel()

    async def _show_places(self, task: Task) -> None:
        flood.best_effort()
        # A place is news worth far fewer edits than a running task's clock.
        interval = 3 * self._timing.status.interval(is_group=task.is_group)
        shown_place: int | None = None
        while True:
            place = self._scheduler.position(task.id)
            if place is not None and place != shown_place:
                if self._telegram_busy(task.chat_id):
                    await asyncio.sleep(interval)  # the chat is backed up: try again later
                    continue
                shown_place = place
                await self._show_place(task, place)
            # At most one edit per interval, and only once the line has moved: it may have
            # moved during the pause, and then there is news already.
            await asyncio.sleep(interval)
            if self._scheduler.position(task.id) == shown_place:
                await self._scheduler.changed()

    async def _show_place(self, task: Task, place: int) -> None:
        await asyncio.wait([self._status_posts[task.id]])
        current = await self._reload(task)
        wanted = text(Lang(task.lang), "status.in_line", place=place)
        if current.status_message_id is None or wanted == self._status_shown.get(task.id):
            return
        try:
            await self._bot.edit_message_text(wanted, task.chat_id, current.status_message_id)
            self._status_shown[task.id] = wanted
        except TelegramError as error:
            self._tlog(task).info("task %d: place in line not shown: %s", task.id, error)

    async def _await_unknown_creation(self, task: Task) -> None:
        """The process died while the upstream was answering the create request. Asking
        again could make (and bill) a second task: these upstreams neither deduplicate a
        request nor list the tasks an account has. But a task created with a callback URL
        calls it when it ends, naming itself (`on_callback`), so wait for that as long as
        the task could run; without a callback URL, or without a callback, the task is
        reported as interrupted and refunded."""
        if not self._expects_callback():
            await self._fail(task, FailureKind.INTERRUPTED, None)
            return
        self._tlog(task).info("task %d: creation outcome unknown, waiting for a callback", task.id)
        nudge = self._nudges[task.id]
        deadline = (task.submitted_at or task.created_at) + self._timing.callback_net.timeout
        while (remaining := deadline - time.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudge.wait(), remaining)
            if (await self._reload(task)).state is not TaskState.SUBMITTING:
                return  # a callback named the upstream task; it is watched from here on
            nudge.clear()
        await self._fail(task, FailureKind.INTERRUPTED, None)

    def _expects_callback(self) -> bool:
        return self._callback_url is not None and self._provider.capabilities.callbacks

    async def _submit(self, task: Task) -> None:
        # submitted_at: when the create request left, for the hourly cap and the timeout.
        if not await self._tasks.mark_submitting(task.id, at=time.time()):
            self._scheduler.release(task.id)  # cancelled while it waited for its turn
            return
        try:
            upstream_id = await self._create_upstream(task)
        except ProviderError as error:
            kind = {
                ErrorKind.REJECTED: FailureKind.REJECTED,
                ErrorKind.UNKNOWN_OUTCOME: FailureKind.INTERRUPTED,
            }.get(error.kind, FailureKind.UNAVAILABLE)
            self._tlog(task).warning("task %d: the upstream did not take it: %s", task.id, error)
            if error.out_of_credits and self._alerts:
                await self._alerts.account_empty()
            await self._fail(task, kind, error.message)
            return
        if self._alerts:
            self._alerts.account_ok()
        # False when a callback came first and recorded the same upstream task.
        if await self._tasks.mark_running(task.id, upstream_id):
            self._tlog(task).info("task %d: upstream task %s", task.id, upstream_id)

    async def _create_upstream(self, task: Task) -> str:
        policy = self._timing.create_retry
        retrying = AsyncRetrying(
            retry=retry_if_exception(
                lambda e: isinstance(e, ProviderError) and e.kind is ErrorKind.TRANSIENT
            ),
            stop=stop_after_attempt(policy.attempts),
            wait=_honour_retry_after(
                wait_exponential_jitter(multiplier=policy.initial, max=policy.maximum)
            ),
            reraise=True,
        )
        request = await self._generation_request(task)
        async for attempt in retrying:
            with attempt:
                try:
                    return await self._upstream("create", self._provider.create_task(request))
                except ProviderError as error:
                    if error.code == 429:
                        # Too many requests: the whole line waits, not just this task.
                        self._scheduler.slow_down(error.retry_after or policy.initial * 5)
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _upstream(self, operation: str, call: Awaitable[T]) -> T:
        """One upstream request, timed and its errors counted."""
        started = time.monotonic()
        try:
            return await call
        except ProviderError as error:
            self._metrics.upstream_errors.labels(self._provider.name, error.kind).inc()
            raise
        finally:
            elapsed = time.monotonic() - started
            self._metrics.upstream_seconds.labels(self._provider.name, operation).observe(elapsed)

    async def _generation_request(self, task: Task) -> GenerationRequest:
        """The task in the terms this upstream takes (see its `Capabilities`)."""
        can = self._provider.capabilities
        source_upstream_id, image_url = None, task.image_url
        if task.source_task_id is not None:
            source = await self._tasks.get(task.source_task_id)
            source_upstream_id = source.upstream_task_id if source else None
            animating = task.kind is TaskKind.IMAGE_TO_VIDEO and task.source_index is not None
            if animating and source and not can.image_to_video_from_task:
                # No way to name image N of a task here: hand over its URL instead.
                image_url = source.result_urls[task.source_index or 0]
                source_upstream_id = None
        return GenerationRequest(
            kind=task.kind,
            prompt=task.prompt or None,
            aspect_ratio=(task.aspect_ratio or None) if can.ratios else None,
            mode=task.mode if task.mode in can.modes else None,
            source_task_id=source_upstream_id,
            index=task.source_index if source_upstream_id else None,
            image_url=image_url,
            callback_url=self._callback_url(task) if self._callback_url and can.callbacks else None,
        )

    async def _post_status(self, task: Task) -> None:
        if task.status_message_id is not None or task.state not in _STATUS_SHOWN_IN:
            return
        flood.best_effort()  # an acknowledgement: welcome, but results go first
        self._status_tickets[task.id] = flood.ticket()
        lang = Lang(task.lang)
        where = _placement(task)
        try:
            message = await self._bot.send_message(
                task.chat_id,
                rendering.status_text(lang, None, time.time() - task.created_at),
                message_thread_id=where.message_thread_id,
                reply_parameters=where.reply_parameters,
            )
        except TelegramError as error:
            self._tlog(task).warning(
                "task %d: could not post the status message: %s", task.id, error
            )
            return
        await self._tasks.note_status_message(task.id, message.message_id)
        self._status_shown[task.id] = message.text_html or ""

    # --- running → succeeded | failed ---------------------------------------------------

    async def _watch(self, task: Task) -> None:
        """Poll the upstream until the task ends, keeping the status message current."""
        seen: list[UpstreamState | None] = [None]
        ticker = asyncio.create_task(self._tick_status(task, seen))
        try:
            await self._poll(task, seen)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _poll(self, task: Task, seen: list[UpstreamState | None]) -> None:
        assert task.upstream_task_id is not None
        by_callback = self._expects_callback()
        schedule = self._timing.callback_net if by_callback else self._timing.poll
        nudge = self._nudges[task.id]
        started = task.submitted_at or task.created_at
        durations = self._durations.setdefault(task.kind, RecentDurations())
        # When polling, the first read waits for the quickest recent tasks of this kind:
        # reads are scarce (~10 a second for all tasks), and earlier ones find nothing.
        quickest = None if by_callback else durations.quickest()
        last_seen_running = 0.0
        while True:
            elapsed = time.time() - started
            if schedule.timed_out(elapsed):
                await self._fail(task, FailureKind.TIMEOUT, None)
                return
            delay = schedule.delay_after(elapsed, quickest=quickest)
            delay = min(delay, schedule.timeout - elapsed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudge.wait(), delay)
            nudge.clear()
            # Polling keeps to the upstream's ~10 reads a second; a read a callback asked
            # for is the one read that task needs, and waits for nobody.
            pace = self._status_reads if not by_callback else contextlib.nullcontext()
            try:
                async with pace:
                    self._metrics.status_requests.labels(self._provider.name).inc()
                    status = await self._upstream(
                        "status", self._provider.get_status(task.upstream_task_id)
                    )
            except ProviderError as error:
                if error.kind is ErrorKind.NOT_FOUND and elapsed > self._timing.not_found_grace:
                    await self._fail(task, FailureKind.GENERATION, None)
                    return
                if error.kind is not ErrorKind.NOT_READY:
                    self._tlog(task).info("task %d: status read failed: %s", task.id, error)
                if error.retry_after:
                    await asyncio.sleep(error.retry_after)
                continue
            seen[0] = status.state
            seen_at = time.time() - started
            if status.state in (UpstreamState.QUEUED, UpstreamState.WORKING):
                last_seen_running = seen_at
            elif status.state is UpstreamState.SUCCEEDED and not by_callback:
                durations.add(last_seen_running, seen_at)
            if status.state is UpstreamState.SUCCEEDED:
                await self._tasks.mark_succeeded(task.id, status.result_urls, at=time.time())
                self._scheduler.release(task.id)
                return
            if status.state is UpstreamState.FAILED:
                await self._fail(task, FailureKind.GENERATION, status.fail_message)
                return

    async def _fail(self, task: Task, kind: FailureKind, detail: str | None) -> bool:
        """Record the failure (the refund goes with it, in one transaction); True if this
        call did."""
        self._scheduler.release(task.id)
        moved = await self._tasks.mark_failed(task.id, kind, detail, at=time.time())
        if moved:
            self._metrics.tasks_failed.labels(kind).inc()
            self._metrics.tasks_finished.labels(task.kind, "failed").inc()
            self._metrics.credits_refunded.inc(task.cost)
        return moved

    async def _tick_status(self, task: Task, seen: list[UpstreamState | None]) -> None:
        flood.best_effort()
        lang = Lang(task.lang)
        interval = self._timing.status.interval(is_group=task.is_group)
        while True:
            if not self._telegram_busy(task.chat_id):
                await self._chat_action(task, ChatAction.UPLOAD_PHOTO)
            # Up to half again, never less (groups must keep to their pace): tasks started
            # together would otherwise all tick in the same instant, and a burst of hundreds
            # of edits delays the results queued behind it.
            await asyncio.sleep(interval * random.uniform(1.0, 1.5))
            if self._telegram_busy(task.chat_id):
                continue  # results first: this tick's edit is dropped, the next shows the latest
            current = await self._tasks.get(task.id)
            if current is None or current.status_message_id is None:
                continue
            wanted = rendering.status_text(lang, seen[0], time.time() - task.created_at)
            if wanted == self._status_shown.get(task.id):  # what the message says now
                continue
            try:
                await self._bot.edit_message_text(wanted, task.chat_id, current.status_message_id)
                self._status_shown[task.id] = wanted
            except BadRequest as error:
                if "not modified" not in str(error).lower():
                    self._tlog(task).info("task %d: status edit refused: %s", task.id, error)
                    return
            except TelegramError as error:
                self._tlog(task).info("task %d: status edit failed: %s", task.id, error)

    async def _chat_action(self, task: Task, action: ChatAction) -> None:
        try:
            await self._bot.send_chat_action(
                task.chat_id, action, message_thread_id=task.message_thread_id
            )
        except TelegramError as error:
            self._tlog(task).info("task %d: chat action failed: %s", task.id, error)

    # --- delivering → delivered -----------------------------------------------------------

    async def _status_settled(self, task: Task) -> Task:
        """Wait for the status message to be posted (or to fail), then re-read the task."""
        await asyncio.wait([self._status_posts[task.id]])
        return await self._reload(task)

    def _withdraw_status_post(self, task: Task) -> None:
        """When Telegram is backed up, the outcome may be known before the status message
        has left: then it never goes, saving the chat two messages (it and its removal)."""
        post = self._status_posts[task.id]
        ticket = self._status_tickets.get(task.id)
        if not post.done() and ticket is not None and not ticket.gone:
            post.cancel()

    async def _deliver(self, task: Task) -> None:
        # One delivery at a time per chat, in the order results became ready (asyncio's
        # locks are fair): a chat's albums never overtake each other on the way out.
        self._withdraw_status_post(task)  # before waiting for the chat's earlier results
        turn = self._chat_turns.setdefault(task.chat_id, _ChatTurn())
        turn.users += 1
        try:
            async with turn.lock:
                await self._deliver_now(task)
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._chat_turns[task.chat_id]

    async def _deliver_now(self, task: Task) -> None:
        task = await self._status_settled(task)
        if task.buttons_message_id is None and not task.album_message_ids:
            probes = await self._deliverer.probe(task.result_urls)
            if not probes:
                await self._fail(task, FailureKind.DELIVERY, None)
                return
            lang = Lang(task.lang)
            caption = rendering.album_caption(task.prompt)
            try:
                if media_kind(probes[0]) is MediaKind.VIDEO:
                    await self._chat_action(task, ChatAction.UPLOAD_VIDEO)
                    markup = rendering.video_keyboard(
                        lang,
                        task.id,
                        task.kind,
                        upscale_offered=self._provider.capabilities.upscale,
                    )
                    sent = await self._deliverer.send_video(
                        _placement(task), probes[0], caption, markup, lang
                    )
                else:
                    sent = await self._deliverer.send_images(
                        _placement(task), probes, caption, lang
                    )
            except Forbidden as error:
                # The user blocked the bot (or it left the group): finish quietly, refund.
                self._tlog(task).info("task %d: the chat is closed to the bot: %s", task.id, error)
                await self._fail(task, FailureKind.DELIVERY, None)
                return
            except BadRequest as error:
                self._tlog(task).warning("task %d: Telegram refused the result: %s", task.id, error)
                await self._fail(task, FailureKind.DELIVERY, None)
                return
            if sent.first_message_id is None:
                await self._fail(task, FailureKind.DELIVERY, None)
                return
            await self._tasks.note_album(task.id, sent.message_ids, sent.file_ids)
            if media_kind(probes[0]) is MediaKind.VIDEO:
                # A single video carries its buttons itself.
                await self._tasks.note_buttons(task.id, sent.first_message_id)
            task = await self._reload(task)
        if task.buttons_message_id is None and task.kind is TaskKind.TEXT_TO_IMAGE:
            lang = Lang(task.lang)
            first = next(m for m in task.album_message_ids if m)
            where = _placement(task, reply_to=first)
            buttons = await self._bot.send_message(
                task.chat_id,
                rendering.result_text(lang, task.aspect_ratio),
                reply_markup=rendering.result_keyboard(
                    task.id,
                    len(task.result_urls),
                    animate_offered=self._provider.capabilities.image_to_video,
                ),
                message_thread_id=where.message_thread_id,
                reply_parameters=where.reply_parameters,
            )
            await self._tasks.note_buttons(task.id, buttons.message_id)
        await self._remove_status(task)
        if await self._tasks.mark_delivered(task.id, at=time.time()):
            self._metrics.tasks_finished.labels(task.kind, "delivered").inc()
            if task.finished_at is not None:
                waited = max(0.0, time.time() - task.finished_at)
                self._metrics.delivery_seconds.labels(task.kind).observe(waited)
        self._tlog(task).info("task %d: delivered %d items", task.id, len(task.result_urls))

    async def _remove_status(self, task: Task) -> None:
        task = await self._reload(task)
        if task.status_message_id is None:
            return
        try:
            await self._bot.delete_message(task.chat_id, task.status_message_id)
        except TelegramError as error:
            self._tlog(task).info(
                "task %d: could not delete the status message: %s", task.id, error
            )

    # --- failed → reported ----------------------------------------------------------------

    async def _report_failure(self, task: Task) -> None:
        self._withdraw_status_post(task)
        task = await self._status_settled(task)
        message = _failure_text(task)
        sent = False
        if task.status_message_id is not None:
            # The status message becomes the failure notice: one message, nothing stale.
            try:
                await self._bot.edit_message_text(message, task.chat_id, task.status_message_id)
                sent = True
            except BadRequest as error:
                self._tlog(task).info(
                    "task %d: could not edit the status into the failure: %s", task.id, error
                )
        if not sent:
            where = _placement(task)
            try:
                await self._bot.send_message(
                    task.chat_id,
                    message,
                    message_thread_id=where.message_thread_id,
                    reply_parameters=where.reply_parameters,
                )
            except Forbidden as error:
                self._tlog(task).info("task %d: the chat is closed to the bot: %s", task.id, error)
        await self._tasks.mark_reported(task.id)

    async def _reload(self, task: Task) -> Task:
        fresh = await self._tasks.get(task.id)
        assert fresh is not None
        return fresh


@dataclass
class _ChatTurn:
    """A chat's delivery lock, and how many tasks hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _placement(task: Task, *, reply_to: int | None = None) -> Placement:
    return Placement(
        chat_id=task.chat_id,
        message_thread_id=task.message_thread_id,
        reply_to=reply_to if reply_to is not None else task.request_message_id,
    )


def _failure_text(task: Task) -> str:
    lang = Lang(task.lang)
    reason = _failure_reason(task, lang)
    if task.cost:
        return f"{reason}\n{text(lang, 'failure.refunded', cost=task.cost)}"
    return reason


def _failure_reason(task: Task, lang: Lang) -> str:
    match task.failure_kind:
        case FailureKind.GENERATION if task.failure_detail:
            return text(lang, "failure.generation", reason=task.failure_detail)
        case FailureKind.GENERATION:
            return text(lang, "failure.generation_no_reason")
        case FailureKind.REJECTED if task.failure_detail:
            return text(lang, "failure.rejected", reason=task.failure_detail)
        case FailureKind.TIMEOUT:
            return text(lang, "failure.timeout")
        case FailureKind.DELIVERY:
            return text(lang, "failure.delivery")
        case FailureKind.INTERRUPTED:
            return text(lang, "failure.interrupted")
        case FailureKind.CANCELLED:
            return text(lang, "failure.cancelled")
        case _:
            return text(lang, "failure.unavailable")


def _honour_retry_after(
    backoff: Callable[[RetryCallState], float],
) -> Callable[[RetryCallState], float]:
    """Back off exponentially with jitter, but never less than the upstream asked (429)."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = error.retry_after if isinstance(error, ProviderError) else None
        return max(backoff(state), asked or 0.0)

    return wait


def _backoff(policy: RetryPolicy, failures: int) -> float:
    ceiling = min(policy.maximum, policy.initial * 2.0 ** (failures - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
