"""The bot's own HTTP endpoint: upstream callbacks, Telegram webhook updates, health.

A callback is a hint, never the truth: a valid one only tells the task's worker to read
the status from the upstream now. Everything slow happens after the answer, which goes
out within milliseconds (the upstream gives up after 15 s and retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot.core.task import Task
from bot.web.signing import callback_signature_valid, secrets_match
from storage.served_files import ServedFiles
from storage.tasks import TaskRepository

_log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
CALLBACK_PREFIX = "/callbacks"
TELEGRAM_PREFIX = "/telegram"
FILES_PREFIX = "/files"


def callback_url(public_url: str, task: Task) -> str:
    """Where the upstream reports on `task`: its id and its own unguessable secret."""
    return f"{public_url.rstrip('/')}{CALLBACK_PREFIX}/{task.id}/{task.callback_secret}"


class BodyError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_json(request: Request) -> Any:
    """The request's JSON body, or `BodyError` for a wrong type, an oversize body, junk, or a
    caller gone before its body came."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BodyError(415, "expected application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyError(413, "body too large")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise BodyError(413, "body too large")
    except ClientDisconnect:
        # The caller went away before its body arrived (it timed out while this replica
        # was frozen or stalled): nobody reads the answer, and it will send again.
        raise BodyError(400, "the request ended before its body") from None
    try:
        return json.loads(body)
    except ValueError:
        raise BodyError(400, "body is not JSON") from None


@dataclass(frozen=True)
class WebDependencies:
    # `tasks` is read by upstream callbacks, which a finished task's slot waits on: give it
    # a repository whose statements go ahead of the database's line (storage/turns.py).
    tasks: TaskRepository
    served_files: ServedFiles
    # Read by the task's own account: its dialect and its webhook key.
    callback_task_id: Callable[[Task, object], str | None]
    on_callback: Callable[[Task, str], Awaitable[bool]]  # the task as read just now
    tasks_in_flight: Callable[[], int]
    database_ok: Callable[[], Awaitable[bool]]
    metrics_text: Callable[[], Awaitable[bytes]]
    hmac_key: Callable[[Task], str | None] = lambda task: None
    telegram: Application | None = None  # type: ignore[type-arg]
    telegram_secret: str | None = None
    taking_updates: Callable[[], bool] = lambda: True
    replica: str = ""  # INSTANCE_ID
    leading: Callable[[], bool | None] = lambda: None  # polls Telegram (None: webhook mode)


def build_web_app(deps: WebDependencies) -> Starlette:
    async def upstream_callback(request: Request) -> Response:
        task = await deps.tasks.get(request.path_params["task_id"])
        if task is None or not secrets_match(task.callback_secret, request.path_params["secret"]):
            return PlainTextResponse("not found", status_code=404)
        try:
            payload = await read_json(request)
        except BodyError as error:
            return PlainTextResponse(error.reason, status_code=error.status)
        upstream_id = deps.callback_task_id(task, payload)
        if upstream_id is None:
            return PlainTextResponse("no task id", status_code=400)
        if task.upstream_task_id is not None and upstream_id != task.upstream_task_id:
            return PlainTextResponse("not this task", status_code=400)
        hmac_key = deps.hmac_key(task)
        if hmac_key and not callback_signature_valid(
            hmac_key,
            upstream_id,
            request.headers.get("x-webhook-timestamp"),
            request.headers.get("x-webhook-signature"),
            now=time.time(),
        ):
            return PlainTextResponse("bad signature", status_code=401)
        watched = await deps.on_callback(task, upstream_id)
        _log.info("task %d: callback (%s)", task.id, "read now" if watched else "already done")
        return JSONResponse({"ok": True})

    async def served_file(request: Request) -> Response:
        """A user's photo, for the upstream to fetch while it animates it."""
        found = await deps.served_files.get(request.path_params["token"])
        if found is None:
            return PlainTextResponse("not found", status_code=404)
        content, content_type = found
        return Response(content, media_type=content_type)

    async def healthz(request: Request) -> Response:
        database = await deps.database_ok()
        body = {
            "status": "ok" if database else "unavailable",
            "database": database,
            "replica": deps.replica,
            "polling_leader": deps.leading(),
            "tasks_in_flight": deps.tasks_in_flight(),
        }
        return JSONResponse(body, status_code=200 if database else 503)

    async def metrics(request: Request) -> Response:
        return Response(await deps.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    async def telegram_update(request: Request) -> Response:
        application = deps.telegram
        if application is None or not secrets_match(
            deps.telegram_secret, request.path_params["secret"]
        ):
            return PlainTextResponse("not found", status_code=404)
        token = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not secrets_match(deps.telegram_secret, token):
            return PlainTextResponse("forbidden", status_code=403)
        if not deps.taking_updates():
            # Shutting down: a non-2xx answer makes Telegram keep the update and retry.
            return PlainTextResponse("shutting down", status_code=503)
        try:
            payload = await read_json(request)
            update = Update.de_json(payload, application.bot)
        except BodyError as error:
            return PlainTextResponse(error.reason, status_code=error.status)
        except (TypeError, ValueError, KeyError, AttributeError):
            return PlainTextResponse("not an update", status_code=400)
        # Handled before it is answered: an update this replica accepted is one it has
        # recorded (a task, a charge), so a replica killed meanwhile loses nothing; Telegram
        # sends it again, and a request recorded before is found, not made twice
        # (`task_requests`). Handlers never wait for a generation, so this is quick.
        await application.process_update(update)
        return Response(status_code=200)

    return Starlette(
        routes=[
            Route(CALLBACK_PREFIX + "/{task_id:int}/{secret}", upstream_callback, methods=["POST"]),
            Route(TELEGRAM_PREFIX + "/{secret}", telegram_update, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route(FILES_PREFIX + "/{token}", served_file, methods=["GET"]),
        ]
    )


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the bot's event loop. The process's signals stay the bot's: it decides
    the order of shutdown, and stops the HTTP server last."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        """uvicorn's loop (a tick a second keeps the Date header current), but woken at
        once by `exit()` rather than noticing it at its next tenth of a second."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # every tick is a whole second's
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # (3.11's wait_for can drop a cancellation)
                    await self._exit.wait()

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()


async def start_server(
    app: Starlette, host: str, port: int
) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    server = EmbeddedServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
    )

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit as stopped:
            # uvicorn exits the process when it cannot listen; a SystemExit out of a task
            # would stop the whole event loop: an error the caller can handle instead.
            raise OSError(f"the HTTP endpoint could not listen on {host}:{port}") from stopped

    serving = asyncio.create_task(serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped it (port in use, …)
            raise RuntimeError("the HTTP server stopped during start-up")
        await asyncio.sleep(0.01)
    return server, serving


async def stop_server(server: EmbeddedServer, serving: asyncio.Task[None]) -> None:
    server.exit()
    await serving
