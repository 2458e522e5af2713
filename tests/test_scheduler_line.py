"""The line in front of the pool of accounts, on its own (a pool with no database moves
its accounts' state in memory), on looptime's virtual clock: the
caps of each account, chats taking turns, routing by capability and room, pinned
follow-ups, a 429's pause, the breaker, places and withdrawals. (test_scheduler.py and
test_pool.py drive the same through the whole bot.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import SecretStr

from bot.core.breaker import BreakerPolicy
from bot.core.lifecycle import TaskKind
from bot.engine.pool import Account, Need, Pool
from bot.engine.scheduler import NoAccount, Scheduler, Withdrawn
from bot.providers import AccountConfig, ErrorKind, ProviderError, build_provider
from bot.settings import ProviderName

pytestmark = pytest.mark.looptime

IMAGE = Need(TaskKind.TEXT_TO_IMAGE)
VIDEO = Need(TaskKind.TEXT_TO_VIDEO)

MakeScheduler = Callable[..., Scheduler]


@pytest.fixture
async def make() -> AsyncIterator[MakeScheduler]:
    """A scheduler over accounts given as (name, provider, max running, max per hour). The
    accounts' clients are real but never called: the line only decides who goes where."""
    pools: list[Pool] = []

    def build(
        *accounts: tuple[str, str, int, int], cooldown: float = 60.0, outage_wait: float = 0.0
    ) -> Scheduler:
        loop = asyncio.get_running_loop()
        configs = [
            AccountConfig(
                name=name,
                provider=ProviderName(provider),
                api_key=SecretStr("unused"),
                base_url=None,
                max_concurrent=running,
                max_tasks_per_hour=hourly,
            )
            for name, provider, running, hourly in accounts
        ]
        pool = Pool(
            [(config, build_provider(config)) for config in configs],
            breaker=BreakerPolicy(threshold=3, cooldown=cooldown),
            clock=loop.time,
        )
        pools.append(pool)
        return Scheduler(pool, outage_wait=outage_wait)

    yield build
    for pool in pools:
        await pool.aclose()


def one(running: int, hourly: int = 100) -> tuple[str, str, int, int]:
    return ("kie", "kie", running, hourly)


async def _admitted_in_order(scheduler: Scheduler, tasks: list[tuple[int, int]]) -> list[int]:
    """Queue `tasks` (task id, chat id) at once; release each a second after its admission."""
    order: list[int] = []

    async def run(task_id: int, chat_id: int) -> None:
        await scheduler.admit(task_id, chat_id, IMAGE)
        order.append(task_id)
        await asyncio.sleep(1)
        scheduler.release(task_id)

    await asyncio.gather(*(run(task_id, chat_id) for task_id, chat_id in tasks))
    return order


async def test_chats_take_turns_each_in_the_order_asked(make: MakeScheduler) -> None:
    scheduler = make(one(running=1))
    await scheduler.admit(0, 9, IMAGE)  # the upstream is busy with another chat's task
    # Meanwhile chat 1 asks three times, chat 2 twice, chat 3 once.
    tasks = [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 3)]
    line = asyncio.create_task(_admitted_in_order(scheduler, tasks))
    await asyncio.sleep(0.5)  # (virtual) every one of them is waiting in line
    scheduler.release(0)
    assert await line == [1, 4, 6, 2, 5, 3]


async def test_no_more_than_the_cap_at_once(make: MakeScheduler) -> None:
    scheduler = make(one(running=2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await _admitted_in_order(scheduler, [(n, n) for n in range(1, 7)])
    assert loop.time() - started == pytest.approx(3.0)  # six tasks of 1 s, two at a time


async def test_the_hourly_cap_holds_the_rest_for_an_hour(make: MakeScheduler) -> None:
    scheduler = make(one(running=10, hourly=2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    moments: dict[int, float] = {}

    async def run(task_id: int) -> None:
        await scheduler.admit(task_id, task_id, IMAGE)
        moments[task_id] = loop.time() - started
        scheduler.release(task_id)

    await asyncio.gather(*(run(n) for n in (1, 2, 3)))
    assert moments == {1: 0.0, 2: 0.0, 3: pytest.approx(3600.0)}


async def test_a_429_pauses_that_account(make: MakeScheduler) -> None:
    scheduler = make(one(running=10))
    loop = asyncio.get_running_loop()
    [account] = scheduler.pool.accounts
    await scheduler.slow_down(account, 30)
    started = loop.time()
    await scheduler.admit(1, 1, IMAGE)
    assert loop.time() - started == pytest.approx(30.0)


async def test_places_in_line_and_a_withdrawal(make: MakeScheduler) -> None:
    scheduler = make(one(running=1))
    await scheduler.admit(1, 1, IMAGE)  # running
    second = asyncio.create_task(scheduler.admit(2, 1, IMAGE))
    third = asyncio.create_task(scheduler.admit(3, 2, IMAGE))
    await asyncio.sleep(0.5)
    assert (scheduler.position(1), scheduler.position(2), scheduler.position(3)) == (None, 1, 2)
    assert scheduler.withdraw(3, 2)
    with pytest.raises(Withdrawn):
        await third
    assert not scheduler.withdraw(3, 2)  # once only
    scheduler.release(1)
    await second
    assert scheduler.position(2) is None


# --- the pool -------------------------------------------------------------------------------


async def test_routing_by_capability(make: MakeScheduler) -> None:
    # grokimagineapi makes videos only; kie makes both.
    scheduler = make(("video-only", "grokimagineapi", 5, 100), ("kie-a", "kie", 5, 100))
    images = [await scheduler.admit(n, n, IMAGE) for n in range(1, 4)]
    assert {a.name for a in images} == {"kie-a"}
    # Videos go where there is most room: the video-only account, whose five are free.
    assert (await scheduler.admit(10, 10, VIDEO)).name == "video-only"
    assert scheduler.pool.capabilities.text_to_image
    assert scheduler.pool.capabilities.text_to_video


async def test_routing_by_room_each_account_under_its_own_cap(make: MakeScheduler) -> None:
    scheduler = make(("a", "kie", 3, 100), ("b", "kie", 1, 100))
    given = [(await scheduler.admit(n, n, IMAGE)).name for n in range(1, 5)]
    assert sorted(given) == ["a", "a", "a", "b"]
    # Both are full: the fifth waits until a slot frees, on whichever account that is.
    fifth = asyncio.create_task(scheduler.admit(5, 5, IMAGE))
    await asyncio.sleep(1)
    assert not fifth.done()
    b_task = given.index("b") + 1
    scheduler.release(b_task)
    assert (await fifth).name == "b"
    accounts = {a.name: a for a in scheduler.pool.accounts}
    assert (len(accounts["a"].running), len(accounts["b"].running)) == (3, 1)


async def test_a_task_waits_only_when_no_fitting_account_has_room(make: MakeScheduler) -> None:
    # The kie account is full; a video still goes at once to the video-only account, and
    # an image waits (the video-only account cannot make it).
    scheduler = make(("kie-a", "kie", 1, 100), ("video-only", "grokimagineapi", 1, 100))
    await scheduler.admit(1, 1, IMAGE)
    image = asyncio.create_task(scheduler.admit(2, 2, IMAGE))
    video = asyncio.create_task(scheduler.admit(3, 3, VIDEO))
    await asyncio.sleep(1)
    assert video.done()
    assert (await video).name == "video-only"
    assert not image.done()
    scheduler.release(1)
    assert (await image).name == "kie-a"


async def test_follow_ups_are_pinned_to_the_source_account(make: MakeScheduler) -> None:
    scheduler = make(("a", "kie", 5, 100), ("b", "kie", 5, 100))
    upscale = Need(TaskKind.UPSCALE, pinned="b")
    animate = Need(TaskKind.IMAGE_TO_VIDEO, pinned="b", by_url=True)
    for n in range(1, 4):  # b has less room than a
        await scheduler.admit(
            n, n, Need(TaskKind.TEXT_TO_IMAGE, pinned=None, refused_by=(("a", 0.0, 0),))
        )
    assert (await scheduler.admit(10, 10, upscale)).name == "b"
    assert (await scheduler.admit(11, 11, animate)).name == "b"


async def test_a_follow_up_of_an_account_out_of_rotation(make: MakeScheduler) -> None:
    scheduler = make(("a", "kie", 5, 100), ("b", "kie", 5, 100))
    b = next(a for a in scheduler.pool.accounts if a.name == "b")
    await _open(scheduler.pool, b)
    # An animation goes to another account with the image's URL...
    animate = Need(TaskKind.IMAGE_TO_VIDEO, pinned="b", by_url=True)
    assert (await scheduler.admit(1, 1, animate)).name == "a"
    # ...an upscale cannot (only b knows its task id): no account can take it now.
    with pytest.raises(NoAccount):
        await scheduler.admit(2, 2, Need(TaskKind.UPSCALE, pinned="b"))


async def test_what_no_account_can_take_is_turned_away_while_the_others_are_full(
    make: MakeScheduler,
) -> None:
    # While every account in rotation is full, the line is not looked through again on each
    # change; a task no account in rotation can take must still leave it, both when it
    # arrives and when it comes to the front of its chat's queue.
    scheduler = make(("a", "kie", 1, 100), ("b", "kie", 1, 100))
    pool = scheduler.pool
    _, b = pool.accounts
    await _open(pool, b)
    assert (await scheduler.admit(1, 1, IMAGE)).name == "a"  # a is full now
    upscale = Need(TaskKind.UPSCALE, pinned="b")
    with pytest.raises(NoAccount):
        await scheduler.admit(2, 2, upscale)  # arrives while a is full
    waiting = asyncio.create_task(scheduler.admit(3, 3, IMAGE))
    behind = asyncio.create_task(scheduler.admit(4, 3, upscale))  # behind task 3, in chat 3
    await asyncio.sleep(0)
    assert not waiting.done()
    assert not behind.done()
    scheduler.release(1)  # task 3 takes a's slot; task 4 comes to the front, with a full
    assert (await waiting).name == "a"
    with pytest.raises(NoAccount):
        await behind


async def test_the_breaker_opens_then_one_probe_closes_it(make: MakeScheduler) -> None:
    scheduler = make(("a", "kie", 10, 100), ("b", "kie", 10, 100), cooldown=60)
    pool = scheduler.pool
    _, b = pool.accounts
    assert await pool.create_failed(b, _error(ErrorKind.UNAVAILABLE))  # an outage begins
    # Out of rotation: everything goes to a, though b has as much room.
    for n in range(1, 4):
        assert (await scheduler.admit(n, n, IMAGE)).name == "a"
    await asyncio.sleep(60)  # (virtual) the cool-down ends: b is half-open
    assert (await scheduler.admit(4, 4, IMAGE)).name == "b"  # the probe
    # One probe at a time: with the probe out, b takes nothing else.
    for n in range(5, 8):
        assert (await scheduler.admit(n, n, IMAGE)).name == "a"
    assert await pool.create_succeeded(b)  # the probe was taken: the outage is over
    assert not await pool.create_succeeded(b)  # (once)
    assert (await scheduler.admit(8, 8, IMAGE)).name == "b"  # closed: most room again


async def test_a_failed_probe_keeps_it_out_and_several_failures_open_it(
    make: MakeScheduler,
) -> None:
    scheduler = make(("a", "kie", 5, 100), cooldown=60)
    pool = scheduler.pool
    [a] = pool.accounts
    # Transient failures: the third in a row opens the breaker; a success between resets.
    assert not await pool.create_failed(a, _error(ErrorKind.TRANSIENT))
    assert not await pool.create_failed(a, _error(ErrorKind.TRANSIENT))
    assert not await pool.create_succeeded(a)
    assert not await pool.create_failed(a, _error(ErrorKind.TRANSIENT))
    assert not await pool.create_failed(a, _error(ErrorKind.REJECTED))  # the request's fault
    assert not await pool.create_failed(a, _error(ErrorKind.TRANSIENT))
    assert await pool.create_failed(a, _error(ErrorKind.TRANSIENT))
    with pytest.raises(NoAccount):  # a pool of one, out of rotation
        await scheduler.admit(1, 1, IMAGE)
    await asyncio.sleep(60)
    assert await scheduler.admit(2, 2, IMAGE) is a  # the probe...
    scheduler.release(2)
    assert not await pool.create_failed(a, _error(ErrorKind.UNAVAILABLE))  # ...fails: not news
    with pytest.raises(NoAccount):
        await scheduler.admit(3, 3, IMAGE)


async def _open(pool: Pool, account: Account) -> None:
    assert await pool.create_failed(account, _error(ErrorKind.UNAVAILABLE))


def _error(kind: ErrorKind) -> ProviderError:
    return ProviderError(kind, "test", code=402 if kind is ErrorKind.UNAVAILABLE else 500)


async def test_tasks_made_before_the_pool_find_an_account_of_their_provider(
    make: MakeScheduler,
) -> None:
    # Their rows name the provider ("kie"), the pool of one's name; a file names accounts.
    scheduler = make(("videos", "grokimagineapi", 5, 100), ("kie-main", "kie", 5, 100))
    found = scheduler.pool.find("kie")
    assert found is not None
    assert found.name == "kie-main"
    assert scheduler.pool.find("nowhere") is None


async def test_a_probe_refused_for_its_request_lets_the_next_task_probe(
    make: MakeScheduler,
) -> None:
    scheduler = make(("a", "kie", 5, 100), cooldown=60)
    pool = scheduler.pool
    [a] = pool.accounts
    await _open(pool, a)
    await asyncio.sleep(60)
    assert await scheduler.admit(1, 1, IMAGE) is a  # the probe...
    scheduler.release(1)
    assert not await pool.create_failed(a, _error(ErrorKind.REJECTED))  # ...was a bad request
    assert await scheduler.admit(2, 2, IMAGE) is a  # another task probes (no deadlock)


# --- an outage: tasks wait for an account to come back, for OUTAGE_WAIT at most ---------


async def test_a_task_waits_out_a_short_outage_and_goes_when_a_check_finds_the_account_well(
    make: MakeScheduler,
) -> None:
    scheduler = make(("a", "kie", 5, 100), cooldown=600, outage_wait=120)
    pool = scheduler.pool
    [a] = pool.accounts
    await _open(pool, a)
    waiting = asyncio.create_task(scheduler.admit(1, 1, IMAGE))
    await asyncio.sleep(30)
    assert not waiting.done()
    assert scheduler.stranded_until(1) == pytest.approx(pool.now() - 30 + 120)
    assert a.breaker.checked(pool.now(), True)  # the free check: well again
    scheduler.look_again()
    assert await waiting is a
    assert scheduler.stranded_until(1) is None


async def test_waiting_out_an_outage_ends_outage_wait_after_joining_or_the_outage_began(
    make: MakeScheduler,
) -> None:
    scheduler = make(("a", "kie", 1, 100), cooldown=600, outage_wait=120)
    pool = scheduler.pool
    [a] = pool.accounts
    assert await scheduler.admit(1, 1, IMAGE) is a  # a is full
    early = asyncio.create_task(scheduler.admit(2, 2, IMAGE))  # waits for room
    await asyncio.sleep(50)
    await _open(pool, a)  # the outage begins 50 s after task 2 joined the line
    scheduler.release(1)
    await asyncio.sleep(30)
    late = asyncio.create_task(scheduler.admit(3, 3, IMAGE))  # joins 30 s into the outage
    await asyncio.sleep(89)
    assert not early.done()
    await asyncio.sleep(2)  # 120 s after the outage began
    with pytest.raises(NoAccount):
        await early
    assert not late.done()
    await asyncio.sleep(30)  # 120 s after it joined
    with pytest.raises(NoAccount):
        await late


async def test_a_task_waiting_out_an_outage_lets_its_chat_s_next_task_go(
    make: MakeScheduler,
) -> None:
    scheduler = make(("a", "kie", 5, 100), ("b", "kie", 5, 100), cooldown=600, outage_wait=120)
    pool = scheduler.pool
    a, b = pool.accounts
    await _open(pool, b)
    upscale = asyncio.create_task(scheduler.admit(1, 7, Need(TaskKind.UPSCALE, pinned="b")))
    await asyncio.sleep(1)
    assert (await scheduler.admit(2, 7, IMAGE)) is a  # behind the upscale, in the same chat
    assert not upscale.done()
    assert scheduler.position(1) == 1


async def test_what_no_account_could_ever_do_leaves_at_once_whatever_the_outage_wait(
    make: MakeScheduler,
) -> None:
    scheduler = make(("videos", "grokimagineapi", 5, 100), outage_wait=120)
    with pytest.raises(NoAccount):
        await scheduler.admit(1, 1, IMAGE)


async def test_a_create_the_database_held_back_does_not_count_against_the_hour(
    make: MakeScheduler,
) -> None:
    # Other replicas' tasks fill the account: the database answers "full" and the create
    # never leaves. Replicas contending for one account used to keep each such attempt in
    # their hourly count, and after a few seconds of contention stopped sending for an hour.
    scheduler = make(("a", "kie", 5, 2))  # two creates an hour
    pool = scheduler.pool
    [a] = pool.accounts
    for n in range(1, 6):
        assert await scheduler.admit(n, n, IMAGE) is a
        await pool.sent(a, n, went=False)  # held back
        scheduler.release(n)
    assert await scheduler.admit(6, 6, IMAGE) is a
    await pool.sent(a, 6, went=True)
    assert await scheduler.admit(7, 7, IMAGE) is a
    await pool.sent(a, 7, went=True)
    late = asyncio.create_task(scheduler.admit(8, 8, IMAGE))  # the hour's two are spent
    await asyncio.sleep(3599)
    assert not late.done()
    await asyncio.sleep(2)
    assert await late is a


async def test_the_task_an_account_refused_is_its_probe_when_its_cool_down_ends(
    make: MakeScheduler,
) -> None:
    # No balance endpoint (grok5imagine): no check, the cool-down's probe decides. The one
    # task waiting is the one the account refused: it must be allowed to be that probe.
    scheduler = make(("g", "grok5imagine", 5, 100), cooldown=15, outage_wait=120)
    pool = scheduler.pool
    [g] = pool.accounts
    assert await scheduler.admit(1, 1, IMAGE) is g
    await _open(pool, g)
    scheduler.release(1)
    refused = Need(TaskKind.TEXT_TO_IMAGE, refused_by=(("g", pool.now(), g.breaker.successes),))
    again = asyncio.create_task(scheduler.admit(1, 1, refused))
    await asyncio.sleep(14)
    assert not again.done()
    await asyncio.sleep(2)
    assert await again is g  # the probe


async def test_a_good_check_lets_one_probe_through_not_every_waiting_task(
    make: MakeScheduler,
) -> None:
    scheduler = make(("a", "kie", 5, 100), cooldown=600, outage_wait=120)
    pool = scheduler.pool
    [a] = pool.accounts
    await _open(pool, a)
    waiting = [asyncio.create_task(scheduler.admit(n, n, IMAGE)) for n in (1, 2, 3)]
    await asyncio.sleep(1)
    assert a.breaker.checked(pool.now(), True)  # the balance answers well
    scheduler.look_again()
    await asyncio.sleep(0)
    assert [t.done() for t in waiting] == [True, False, False]  # one probe
    assert await pool.create_succeeded(a)  # taken: the outage is over
    scheduler.look_again()
    assert [await t for t in waiting] == [a, a, a]
