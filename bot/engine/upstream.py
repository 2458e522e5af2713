"""The engine's side of the upstream: creating a task (retried on transient errors, a 429
holding the whole line), reading its status at the pace the upstream allows, and learning
when a kind of task can first be done, so that polling does not read too early."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.core.lifecycle import RecentDurations, TaskKind
from bot.core.task import Task
from bot.engine.pool import Account
from bot.engine.scheduler import Scheduler
from bot.engine.timing import Timing
from bot.ops.metrics import Metrics
from bot.providers import ErrorKind, GenerationRequest, ProviderError, UpstreamStatus
from storage.tasks import TaskRepository
from storage.telegram_pace import Bucket
from storage.upstream_pace import UpstreamPace

T = TypeVar("T")

# The upstreams keep result URLs about 24 hours ("download and store images immediately");
# a URL younger than this is handed over as it is, an older one may be gone.
RESULT_URLS_TRUSTED_FOR = 6 * 3600.0


class UpstreamSide:
    def __init__(
        self,
        *,
        tasks: TaskRepository,
        timing: Timing,
        metrics: Metrics,
        scheduler: Scheduler,
        callback_url: Callable[[Task], str] | None,
        image_from_telegram: Callable[[str], Awaitable[str | None]] | None = None,
        clock: Callable[[], float] = time.time,
        shared_pace: UpstreamPace | None = None,
    ) -> None:
        self._tasks = tasks
        self._shared_pace = shared_pace  # replicas on PostgreSQL: the status reads' pace
        self._image_from_telegram = image_from_telegram  # a file id → a URL the upstream takes
        self._clock = clock
        self._timing = timing
        self._metrics = metrics
        self._scheduler = scheduler
        self._callback_url = callback_url
        self._status_reads: dict[str, AsyncLimiter] = {}  # per account: per key upstream
        self._durations: dict[TaskKind, RecentDurations] = {}

    def expects_callback(self, account: Account) -> bool:
        """Tasks are created with a callback URL that this account's upstream calls when
        they end."""
        return self._callback_url is not None and account.capabilities.callbacks

    def durations(self, kind: TaskKind) -> RecentDurations:
        """How long recent tasks of this kind took."""
        return self._durations.setdefault(kind, RecentDurations())

    async def create(self, account: Account, request: GenerationRequest) -> str:
        """Create the task (as `request` puts it) with the account; its upstream id. Raises
        `ProviderError`."""
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
        async for attempt in retrying:
            with attempt:
                try:
                    return await self._timed(
                        account, "create", account.provider.create_task(request)
                    )
                except ProviderError as error:
                    if error.code == 429:
                        # Too many requests: the account takes nothing for a while.
                        pause = error.retry_after or policy.initial * 5
                        await self._scheduler.slow_down(account, pause)
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def read_status(
        self, account: Account, upstream_task_id: str, *, paced: bool
    ) -> UpstreamStatus:
        """One status read. Polling keeps to each key's ~10 reads a second (`paced`); a
        read a callback asked for is the one read that task needs, and waits for nobody."""
        pace: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
        if paced and self._shared_pace is not None:
            # Every replica's reads of this account together keep to its pace.
            capacity, period = self._timing.status_reads
            bucket = Bucket(capacity, capacity / period)
            moment = await self._shared_pace.reserve(account.name, bucket, now=self._clock())
            await asyncio.sleep(max(0.0, moment - self._clock()))
        elif paced:
            pace = self._status_reads.setdefault(
                account.name, AsyncLimiter(*self._timing.status_reads)
            )
        async with pace:
            self._metrics.status_requests.labels(account.name).inc()
            return await self._timed(
                account, "status", account.provider.get_status(upstream_task_id)
            )

    async def _timed(self, account: Account, operation: str, call: Awaitable[T]) -> T:
        """One upstream request, timed and its errors counted."""
        started = time.monotonic()
        try:
            return await call
        except ProviderError as error:
            self._metrics.upstream_errors.labels(account.name, error.kind).inc()
            raise
        finally:
            elapsed = time.monotonic() - started
            self._metrics.upstream_seconds.labels(account.name, operation).observe(elapsed)

    async def request(self, task: Task, account: Account) -> GenerationRequest:
        """The task in the terms this account's upstream takes (see its `Capabilities`)."""
        can = account.capabilities
        source_upstream_id, image_url = None, task.image_url
        if image_url and task.image_file_id and task.parent_task_id is not None:
            # Made again (🔁) from a user's photo: the link it was handed over at may be
            # gone by now (a day, for the bot's own); Telegram's copy is handed over anew.
            image_url = await self._from_telegram(task.image_file_id) or image_url
        if task.source_task_id is not None:
            source = await self._tasks.get(task.source_task_id)
            source_upstream_id = source.upstream_task_id if source else None
            animating = task.kind is TaskKind.IMAGE_TO_VIDEO and task.source_index is not None
            elsewhere = (
                source is not None and self._scheduler.pool.find(source.account) is not account
            )
            if animating and source and (elsewhere or not can.image_to_video_from_task):
                # No way to name image N of that task here (another account made it, or
                # this upstream takes no index): hand over the image itself instead.
                image_url = await self._source_image(source, task.source_index or 0)
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

    async def _source_image(self, source: Task, index: int) -> str:
        """A URL of image `index` of an earlier set that the upstream can fetch now. Its result
        URL while surely alive; past that (the upstreams keep them about a day), Telegram's
        copy of the image the bot delivered, put at a URL of our own."""
        url = source.result_urls[index]
        made_at = source.finished_at or source.created_at
        if self._clock() - made_at < RESULT_URLS_TRUSTED_FOR:
            return url
        file_ids = source.media_file_ids
        file_id = file_ids[index] if index < len(file_ids) else ""
        if not file_id:
            return url  # it went as a document or a link: its URL is all there is
        return await self._from_telegram(file_id) or url

    async def _from_telegram(self, file_id: str) -> str | None:
        """Telegram's copy of an image, at a URL the upstream can fetch; None if not had."""
        if self._image_from_telegram is None:
            return None
        return await self._image_from_telegram(file_id)


def _honour_retry_after(
    backoff: Callable[[RetryCallState], float],
) -> Callable[[RetryCallState], float]:
    """Back off exponentially with jitter, but never less than the upstream asked (429)."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = error.retry_after if isinstance(error, ProviderError) else None
        return max(backoff(state), asked or 0.0)

    return wait
