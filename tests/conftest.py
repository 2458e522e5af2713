"""Fixtures: the Telegram and kie test servers on loopback, and the bot pointed at them."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import run
from bot.engine.engine import Timing
from bot.settings import Settings
from bot.telegram.flood import FloodLimits
from bot.web.signing import telegram_webhook_secret
from fakes.bot_under_test import BOT_TOKEN, FAST, LOOSE_FLOOD, PROVIDER_KEY, free_port
from fakes.kie import FakeKie
from fakes.postgres import ThrowawayPostgres, run_sql
from fakes.telegram import WAIT, FakeTelegram

__all__ = ["BOT_TOKEN", "FAST", "LOOSE_FLOOD", "PROVIDER_KEY", "free_port"]


@dataclass
class RunningBot:
    settings: Settings
    stop_event: asyncio.Event
    task: asyncio.Task[None]

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}{path}"

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """One statement on the bot's database (SQLite or PostgreSQL), committed. For reads:
        it blocks the event loop the bot runs in while it waits."""
        return run_sql(self.settings.database, sql, params)

    async def write(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """One statement that writes, while the bot runs: from a thread, so the bot (in this
        event loop) can finish a transaction of its own that the write waits for. Made with
        `rows` instead, SQLite's lock waits for the bot while the bot waits for the loop,
        until "database is locked" (seen on a busy machine)."""
        return await asyncio.to_thread(run_sql, self.settings.database, sql, params)

    def tasks(self) -> list[Any]:
        return self.rows("SELECT * FROM tasks ORDER BY id")

    async def wait_until_settled(self, count: int = 1, timeout: float = WAIT) -> list[Any]:
        """Wait until `count` tasks exist and every one is final; returns them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            tasks = self.tasks()
            if len(tasks) >= count and all(t["state"] in ("delivered", "reported") for t in tasks):
                return tasks
            if loop.time() > deadline:
                raise TimeoutError(f"tasks never settled: {[dict(t) for t in tasks]}")
            await asyncio.sleep(0.02)


StartBot = Callable[..., Awaitable[RunningBot]]


class FakeClock:
    """Wall-clock time that a test can move, for what depends on the UTC day."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def eventually(predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `predicate` until it is truthy (for conditions no server announces)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the condition never held")
        await asyncio.sleep(0.02)
    return value


def failure_notice(telegram: FakeTelegram, chat_id: int, task: Any) -> str:
    """The text that told the user the task failed: its status message, turned into the
    notice, or (when the failure came before the status message left, as a create refused
    at once can) a reply of its own to the request."""
    if task["status_message_id"] is not None:
        notice = telegram.message(chat_id, task["status_message_id"])
        assert not notice.deleted
        text: str = notice.payload["text"]
        return text
    [reply] = [
        c
        for c in telegram.calls_of("sendMessage", chat_id)
        if c.ok
        and (c.json("reply_parameters") or {}).get("message_id") == task["request_message_id"]
    ]
    return str(reply.result["text"])


def public_endpoint() -> dict[str, Any]:
    """Settings that give the bot its own HTTP endpoint on loopback (callback mode)."""
    port = free_port()
    return {"public_url": f"http://127.0.0.1:{port}", "http_host": "127.0.0.1", "http_port": port}


async def wait_for_http(url: str, timeout: float = WAIT) -> None:
    async with httpx.AsyncClient() as client:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.02)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(BOT_TOKEN)
    await server.start()
    yield server
    await server.stop()
    assert not server.server_errors, "\n".join(server.server_errors)
    assert not server.api_violations, "\n".join(server.api_violations)


@pytest.fixture
async def kie() -> AsyncIterator[FakeKie]:
    server = FakeKie(PROVIDER_KEY)
    await server.start()
    yield server
    await server.stop()


# The database every test's bot runs on: `IMAGINE_TEST_DATABASE=postgresql` runs the suite
# on PostgreSQL (scripts/test runs it on both), tests marked `sqlite_only` aside.
BACKEND = os.environ.get("IMAGINE_TEST_DATABASE", "sqlite")
assert BACKEND in ("sqlite", "postgresql"), BACKEND


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test process's own, for the whole run."""
    server = ThrowawayPostgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bot_database(tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """This test's database: a SQLite file, or a fresh PostgreSQL database (its URL)."""
    if BACKEND == "postgresql":
        server: ThrowawayPostgres = request.getfixturevalue("postgres")
        return server.new_database()
    return tmp_path / "bot.sqlite3"


def database_settings(target: Path | str) -> dict[str, Any]:
    """The settings that point a bot at `target`."""
    if isinstance(target, str):
        return {"database_url": target}
    return {"database_path": target}


@pytest.fixture
def make_settings(
    telegram: FakeTelegram, kie: FakeKie, tmp_path: Path, bot_database: Path | str
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "telegram_bot_token": BOT_TOKEN,
            "telegram_api_url": telegram.url,
            "provider_api_key": PROVIDER_KEY,
            "provider_base_url": kie.url,
            **database_settings(overrides.pop("database", bot_database)),
            # The HTTP endpoint (/healthz, /metrics) always runs: on loopback, on a free port.
            "http_host": "127.0.0.1",
            "http_port": free_port(),
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


# Secrets the tests hand the bot; none may ever appear in a log line.
TEST_SECRETS = (BOT_TOKEN, PROVIDER_KEY, "hmac-key-0f9e8d")


def assert_no_secrets_logged(records: list[logging.LogRecord], secrets: set[str]) -> None:
    for record in records:
        line = record.getMessage() + (record.exc_text or "")
        leaked = [secret for secret in secrets if secret in line]
        assert not leaked, f"a secret reached the log: {record.name}: {line[:200]}"


@pytest.fixture
async def start_bot(
    telegram: FakeTelegram,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[StartBot]:
    running: list[RunningBot] = []

    async def start(
        timing: Timing = FAST,
        clock: Callable[[], float] = time.time,
        flood_limits: FloodLimits = LOOSE_FLOOD,
        **overrides: Any,
    ) -> RunningBot:
        settings = make_settings(**overrides)
        stop = asyncio.Event()
        polls_before = telegram.polls
        task = asyncio.create_task(
            run(settings, stop=stop, timing=timing, clock=clock, flood_limits=flood_limits)
        )
        bot = RunningBot(settings, stop, task)
        running.append(bot)

        webhooks_before = len(telegram.calls_of("setWebhook"))

        def taking_updates() -> bool:
            if task.done():
                task.result()
            if settings.telegram_webhook:
                return len(telegram.calls_of("setWebhook")) > webhooks_before
            return telegram.polls > polls_before

        await telegram.wait_for(taking_updates)
        await wait_for_http(bot.http_url("/healthz"))
        return bot

    yield start
    for bot in running:
        if not bot.task.done():
            await bot.stop()
    # Every log line of the test, including the bot's shutdown, is free of secrets: the
    # fixed ones, each task's callback secret, the webhook secret.
    secrets = set(TEST_SECRETS) | {telegram_webhook_secret(BOT_TOKEN)}
    for bot in running:
        if bot.settings.database_url or bot.settings.database_path.exists():
            rows = bot.rows("SELECT callback_secret FROM tasks WHERE callback_secret IS NOT NULL")
            secrets |= {row[0] for row in rows}
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    assert_no_secrets_logged(records, secrets)


@pytest.fixture
async def bot(start_bot: StartBot) -> RunningBot:
    return await start_bot()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start the whole bot (or a process of it) against the test servers are
    end-to-end: `pytest -m "not e2e"` runs the rest in a few seconds. On PostgreSQL, the
    tests of what only SQLite has (its file, its locks, its backups) are left out."""
    for item in items:
        module = getattr(getattr(item, "module", None), "__name__", "")
        if "start_bot" in getattr(item, "fixturenames", ()) or module in _PROCESS_TESTS:
            item.add_marker(pytest.mark.e2e)
        if BACKEND == "postgresql" and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="SQLite's own (IMAGINE_TEST_DATABASE)"))
        if BACKEND == "sqlite" and item.get_closest_marker("postgres_only"):
            item.add_marker(pytest.mark.skip(reason="PostgreSQL's (IMAGINE_TEST_DATABASE)"))


_PROCESS_TESTS = frozenset({"tests.test_cli", "tests.test_crash"})
