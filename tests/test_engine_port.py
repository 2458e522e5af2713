"""The engine on its own, through its ports: no Telegram library, no HTTP. A task's chat is
`fakes.chat.RecordingChat` (what each chat was told, fenced by the claim as the real port
is), its upstream `MemoryUpstream`; the database is the real one (SQLite, or PostgreSQL on
the second run). Claims, failover and takeover are driven in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.core.lifecycle import FailureKind, PollSchedule, StatusCadence, TaskKind, TaskState
from bot.core.task import NewTask, Task
from bot.engine.engine import Engine, RetryPolicy, Timing
from bot.engine.pool import Pool
from bot.providers import AccountConfig, UpstreamState
from bot.settings import ProviderName
from fakes.chat import MemoryUpstream, RecordingChat, Told, unavailable
from fakes.telegram import WAIT
from storage.accounts import AccountStates
from storage.chats import ChatRepository
from storage.database import Database
from storage.tasks import TaskRepository
from tests.conftest import eventually

QUICK = Timing(
    poll=PollSchedule(
        first=0.02, fast=0.02, fast_until=5, medium=0.1, medium_until=10, slow=0.2, timeout=120
    ),
    status=StatusCadence(private=0.05, group=0.05),
    create_retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05),
    step_retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05),
    status_reads=(1000, 1),
    account_checks=(0.05, 0.1),
    places=0.1,
)


class Cluster:
    """Engines ("replicas") over one database and one set of upstream accounts, telling one
    shared log what reached the chats."""

    def __init__(self, database: Database, upstreams: list[MemoryUpstream]) -> None:
        self.database = database
        self.tasks = TaskRepository(database)
        self.upstreams = upstreams
        self.told: list[Told] = []
        self.engines: list[Engine] = []
        self.pools: list[Pool] = []

    async def replica(
        self, name: str, *, clock: Callable[[], float] = time.time, max_held: int = 0
    ) -> tuple[Engine, RecordingChat]:
        configs = [
            AccountConfig(
                name=upstream.name,
                provider=ProviderName.KIE,
                api_key=SecretStr("unused"),
                max_concurrent=5,
                max_tasks_per_hour=100,
            )
            for upstream in self.upstreams
        ]
        pool = Pool(
            list(zip(configs, self.upstreams, strict=True)),
            states=AccountStates(self.database),
            breaker=QUICK.breaker,
        )
        chat = RecordingChat(name, self.told)
        engine = Engine(
            chat=chat,
            tasks=self.tasks,
            pool=pool,
            timing=QUICK,
            owner=name,
            clock=clock,
            on_chat_migrated=ChatRepository(self.database).migrate,
            max_held=max_held,
        )
        await engine.start()
        self.engines.append(engine)
        self.pools.append(pool)
        return engine, chat

    def calls(self, call: str) -> list[Told]:
        return [told for told in self.told if told.call == call]

    async def settled(self, task_id: int) -> Task:
        """The task once it is final (delivered, or its failure reported)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            task = await self.tasks.get(task_id)
            if task is not None and task.state in (TaskState.DELIVERED, TaskState.REPORTED):
                return task
            if loop.time() > deadline:
                raise TimeoutError(f"task {task_id} never settled: {task}")
            await asyncio.sleep(0.02)


@pytest.fixture
async def open_database(bot_database: Path | str) -> AsyncIterator[Database]:
    database = await Database.open(bot_database)
    yield database
    await database.close()


@pytest.fixture
async def cluster_of(open_database: Database) -> AsyncIterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def build(*upstreams: MemoryUpstream) -> Cluster:
        cluster = Cluster(open_database, list(upstreams))
        made.append(cluster)
        return cluster

    yield build
    for cluster in made:
        for engine in cluster.engines:
            await engine.stop(grace=1.0)
        for pool in cluster.pools:
            await pool.aclose()


def image_request(chat_id: int = 1, prompt: str = "a red fox") -> NewTask:
    return NewTask(
        kind=TaskKind.TEXT_TO_IMAGE,
        chat_id=chat_id,
        chat_type="private" if chat_id > 0 else "group",
        user_id=7,
        lang="en",
        prompt=prompt,
        aspect_ratio="1:1",
        request_message_id=10,
    )


async def submitted(engine: Engine, new: NewTask) -> Task:
    task = await engine.submit(new)
    assert isinstance(task, Task)
    return task


async def test_a_task_is_told_to_its_chat_in_the_engines_own_terms(
    cluster_of: Callable[..., Cluster],
) -> None:
    cluster = cluster_of(MemoryUpstream("kie"))
    engine, _ = await cluster.replica("a")
    task = await submitted(engine, image_request())

    done = await cluster.settled(task.id)

    assert done.state is TaskState.DELIVERED
    calls = [told.call for told in cluster.told if told.call != "show_activity"]
    # The status message first (it may show progress), the album, its buttons, then the
    # status message goes.
    assert calls[0] == "post_status"
    assert calls[-3:] == ["send_result", "send_buttons", "remove_status"]
    assert set(calls[1:-3]) <= {"edit_status"}
    [result] = cluster.calls("send_result")
    assert len(result.detail) == 6  # type: ignore[arg-type]
    assert len(done.album_message_ids) == 6
    assert done.buttons_message_id is not None


async def test_an_account_that_refuses_the_create_hands_the_task_to_the_next(
    cluster_of: Callable[..., Cluster],
) -> None:
    down, up = MemoryUpstream("first"), MemoryUpstream("second")
    down.refuse = unavailable()
    cluster = cluster_of(down, up)
    engine, _ = await cluster.replica("a")

    tasks = [await submitted(engine, image_request(chat_id=n)) for n in (1, 2, 3)]
    done = [await cluster.settled(task.id) for task in tasks]

    assert [task.state for task in done] == [TaskState.DELIVERED] * 3
    assert {task.account for task in done} == {"second"}
    assert len(up.created) == 3
    assert not down.created
    assert sorted(told.chat_id for told in cluster.calls("send_result")) == [1, 2, 3]


async def test_a_task_taken_over_is_told_only_by_its_new_holder(
    cluster_of: Callable[..., Cluster],
) -> None:
    """Replica "a" drives a task; replica "b", whose clock is past a's lease (a seems dead
    to it), takes it over. From then on every call "a" makes about the task is fenced:
    the result reaches the chat once, from "b"."""
    upstream = MemoryUpstream("kie", hold=True)
    cluster = cluster_of(upstream)
    a, chat_a = await cluster.replica("a")
    task = await submitted(a, image_request())
    await eventually(lambda: upstream.created and cluster.calls("post_status"))

    later = QUICK.lease * 2
    _, chat_b = await cluster.replica("b", clock=lambda: time.time() + later)
    for _ in range(int(WAIT / 0.02)):
        if await cluster.tasks.claims.holds(task.id, "b"):
            break
        await asyncio.sleep(0.02)
    assert await cluster.tasks.claims.holds(task.id, "b")
    # "a" still ticks its status message, and nothing of it leaves any more; or its next
    # heartbeat came first, found the task taken over, and "a" stopped driving it.
    fenced_before = chat_a.fenced
    await eventually(lambda: chat_a.fenced > fenced_before or a.in_flight == 0)
    upstream.finish()

    done = await cluster.settled(task.id)
    assert done.state is TaskState.DELIVERED
    assert [told.by for told in cluster.calls("send_result")] == ["b"]
    assert [told.by for told in cluster.calls("send_buttons")] == ["b"]
    assert len(upstream.created) == 1  # "b" watched the same upstream task: no second create
    assert chat_b.fenced == 0


async def test_a_chat_closed_to_the_bot_fails_the_task_and_is_not_asked_again(
    cluster_of: Callable[..., Cluster],
) -> None:
    cluster = cluster_of(MemoryUpstream("kie"))
    engine, chat = await cluster.replica("a")
    chat.closed.add(5)
    task = await submitted(engine, image_request(chat_id=5))

    done = await cluster.settled(task.id)

    assert done.state is TaskState.REPORTED
    assert done.failure_kind is FailureKind.DELIVERY
    assert cluster.calls("send_result") == []


async def test_a_group_that_moved_gets_its_result_at_its_new_id(
    cluster_of: Callable[..., Cluster],
) -> None:
    upstream = MemoryUpstream("kie", hold=True)
    cluster = cluster_of(upstream)
    engine, chat = await cluster.replica("a")
    task = await submitted(engine, image_request(chat_id=-100))
    await eventually(lambda: upstream.created)
    chat.moved[-100] = -1001  # it became a supergroup meanwhile
    upstream.finish()

    done = await cluster.settled(task.id)

    assert done.state is TaskState.DELIVERED
    assert done.chat_id == -1001
    assert [told.chat_id for told in cluster.calls("send_result")] == [-1001]


async def test_a_replica_drives_no_more_tasks_than_it_may_and_the_rest_wait_as_rows(
    cluster_of: Callable[..., Cluster],
) -> None:
    upstream = MemoryUpstream("kie", hold=True)
    cluster = cluster_of(upstream)
    a, _ = await cluster.replica("a", max_held=2)
    made = [await submitted(a, image_request(chat_id=n)) for n in range(1, 6)]
    await eventually(lambda: len(upstream.created) == 2)
    assert a.in_flight == 2
    # The other three are rows nobody holds: any process with room may take them.
    waiting = await cluster.tasks.claims.claimable_ids("b", now=time.time())
    assert sorted(waiting) == [task.id for task in made[2:]]
    b, _ = await cluster.replica("b")
    await eventually(lambda: len(upstream.created) == 5)
    assert b.in_flight == 3
    upstream.finish()
    done = [await cluster.settled(task.id) for task in made]
    assert {task.state for task in done} == {TaskState.DELIVERED}
    assert sorted(told.chat_id for told in cluster.calls("send_result")) == [1, 2, 3, 4, 5]


async def test_a_replica_restarting_over_its_limit_lets_go_of_what_it_cannot_drive(
    cluster_of: Callable[..., Cluster],
) -> None:
    upstream = MemoryUpstream("kie", hold=True)
    cluster = cluster_of(upstream)
    first, _ = await cluster.replica("a")
    made = [await submitted(first, image_request(chat_id=n)) for n in range(1, 5)]
    await eventually(lambda: len(upstream.created) == 4)
    await first.stop(grace=1.0)
    cluster.engines.remove(first)
    # As a kill would leave them: still "a"'s, its heartbeat alive.
    await cluster.database.execute("UPDATE tasks SET claimed_by = 'a'")
    await cluster.tasks.claims.beat("a", until=time.time() + 600)
    again, _ = await cluster.replica("a", max_held=3)
    assert again.in_flight == 3
    let_go = await cluster.tasks.claims.claimable_ids("b", now=time.time())
    assert len(let_go) == 1
    b, _ = await cluster.replica("b")
    await eventually(lambda: b.in_flight == 1)
    upstream.finish()
    done = [await cluster.settled(task.id) for task in made]
    assert {task.state for task in done} == {TaskState.DELIVERED}
    assert len(upstream.created) == 4  # the running tasks were watched, never made again


async def test_a_status_edit_never_repeats_what_the_message_reads(
    cluster_of: Callable[..., Cluster],
) -> None:
    """A task the upstream holds as queued, within one second: every tick wants what the
    message already reads ("queued, 0 s"), so none sends an edit (Telegram would refuse it:
    "message is not modified"; once failed CI, counted as a BadRequest)."""
    upstream = MemoryUpstream("kie", hold=True)
    upstream.state = UpstreamState.QUEUED
    cluster = cluster_of(upstream)
    frozen = time.time()
    engine, chat = await cluster.replica("a", clock=lambda: frozen)
    await submitted(engine, image_request())
    await eventually(lambda: upstream.reads >= 2 and cluster.calls("post_status"))
    # Each tick of the status message shows the chat's activity first: four of them mean
    # three ticks looked at the message since the upstream said "queued".
    seen = len(cluster.calls("show_activity"))
    await eventually(lambda: len(cluster.calls("show_activity")) >= seen + 4)
    assert chat.repeated == 0
    assert cluster.calls("edit_status") == []
