"""The HTTP endpoint in-process (httpx's ASGITransport), no bot and no server around it:
/healthz, /metrics, served files, and callbacks refused before they reach the engine."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from bot.core.lifecycle import TaskKind
from bot.core.task import NewTask, Task
from bot.web.routes import WebDependencies, build_web_app, start_server
from storage.database import Database
from storage.served_files import ServedFiles
from storage.tasks import TaskRepository


class _World:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.served = ServedFiles(database)
        self.database_answers = True
        self.nudged: list[tuple[int, str]] = []

    def app(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app_itself())
        return httpx.AsyncClient(transport=transport, base_url="http://bot.test")

    def app_itself(self) -> Starlette:
        async def on_callback(task: Task, upstream_id: str) -> bool:
            self.nudged.append((task.id, upstream_id))
            return True

        async def database_ok() -> bool:
            return self.database_answers

        async def metrics_text() -> bytes:
            return b"imagine_tasks_in_flight 3.0\n"

        deps = WebDependencies(
            tasks=TaskRepository(self.database),
            served_files=self.served,
            callback_task_id=lambda task, payload: None,
            on_callback=on_callback,
            tasks_in_flight=lambda: 3,
            database_ok=database_ok,
            metrics_text=metrics_text,
        )
        return build_web_app(deps)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    database = await Database.open(tmp_path / "web.sqlite3")
    yield _World(database)
    await database.close()


async def test_healthz_says_whether_the_database_answers(world: _World) -> None:
    async with world.app() as client:
        healthy = await client.get("/healthz")
        world.database_answers = False
        sick = await client.get("/healthz")
    assert (healthy.status_code, healthy.json()) == (
        200,
        {
            "status": "ok",
            "database": True,
            "replica": "",
            "polling_leader": None,  # webhook mode: no replica polls
            "tasks_in_flight": 3,
        },
    )
    assert sick.status_code == 503
    assert sick.json()["database"] is False


async def test_metrics_are_served_as_prometheus_text(world: _World) -> None:
    async with world.app() as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.text == "imagine_tasks_in_flight 3.0\n"


async def test_a_served_file_by_its_token_and_nothing_by_a_guess(world: _World) -> None:
    token = await world.served.add(b"\x89PNG\r\n\x1a\nbytes", "image/png")
    async with world.app() as client:
        served = await client.get(f"/files/{token}")
        guessed = await client.get("/files/guessed-token")
    assert (served.status_code, served.content) == (200, b"\x89PNG\r\n\x1a\nbytes")
    assert served.headers["content-type"] == "image/png"
    assert guessed.status_code == 404


async def test_a_callback_for_no_such_task_is_not_found(world: _World) -> None:
    async with world.app() as client:
        response = await client.post("/callbacks/42/not-the-secret", json={"code": 200})
        wrong_method = await client.get("/callbacks/42/not-the-secret")
    assert response.status_code == 404
    assert wrong_method.status_code == 405
    assert world.nudged == []


async def test_a_port_in_use_is_an_error_the_bot_can_handle_not_an_exit() -> None:
    """Regression: uvicorn's exit when it could not listen, raised out of a task, stopped
    the whole event loop (and with it every test after, in that process)."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError, match="could not listen"):
            await start_server(Starlette(), "127.0.0.1", port)
    finally:
        taken.close()
    await asyncio.sleep(0)  # the loop goes on


async def test_a_callback_whose_caller_went_away_before_its_body_is_answered_quietly(
    world: _World,
) -> None:
    """The upstream gave up on a callback before its body arrived (it timed out while the
    replica was frozen): a 400 nobody reads, not an "Exception in ASGI application" in the
    log, and nothing reaches the engine."""
    tasks = TaskRepository(world.database)
    task = await tasks.create(
        NewTask(
            kind=TaskKind.TEXT_TO_IMAGE,
            chat_id=1,
            chat_type="private",
            user_id=1,
            lang="en",
            prompt="p",
            aspect_ratio="1:1",
        )
    )
    assert isinstance(task, Task)
    assert task.callback_secret is not None
    path = f"/callbacks/{task.id}/{task.callback_secret}"
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"20")],
        "client": ("127.0.0.1", 5000),
        "server": ("bot.test", 80),
    }
    await world.app_itself()(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
    assert world.nudged == []
