"""A kie-dialect upstream for tests: real HTTP on loopback, answering as documented.

Tasks move waiting → generating → success | fail on a clock; right after creation the
status endpoint answers `422 recordInfo is null` for a moment, as the real one does. The
result images are served by this server itself (small valid PNGs, one per index).
What the next task does is set with `scenario` (and `next_scenarios` for one-offs);
`fail_creates` makes creation answer business errors.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import struct
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.server import LoopbackServer

MODELS = {
    "grok-imagine/text-to-image",
    "grok-imagine/image-to-video",
    "grok-imagine/text-to-video",
    "grok-imagine/upscale",
}
ASPECT_RATIOS = {"2:3", "3:2", "1:1", "16:9", "9:16"}


@dataclass(frozen=True)
class Scenario:
    duration: float = 0.3  # seconds from creation to the outcome
    queued_for: float | None = None  # seconds "waiting" before "generating" (0.3 × duration)
    not_ready_for: float = 0.05  # the `recordInfo is null` window after creation
    outcome: Literal["success", "fail"] = "success"
    images: int = 6
    fail_code: str = "500"
    fail_msg: str = "Internal server error"
    image_bytes: int = 0  # pad each result to about this size (0: tiny)
    result: Literal["auto", "image", "video"] = "auto"  # auto: by the model (upscale: video)
    size_on_head: bool = True  # False: HEAD is not allowed, the size stays unknown
    sizes: tuple[tuple[int, int], ...] = ()  # (index, bytes) for single results of their own size
    callback: Literal["send", "drop"] = "send"  # when the task has a callBackUrl
    callback_delay: float = 0.0  # after the task is done
    callback_repeats: int = 1  # the same callback, sent this many times


# A task that runs until the test ends it with `FakeKie.finish` (it takes an hour otherwise):
# what must happen while a task runs is then waited for, not raced against its clock.
HELD = Scenario(duration=3600.0, queued_for=0.05)


@dataclass(frozen=True)
class CallbackAttempt:
    task_id: str
    at: float
    status: int | None  # None: the bot could not be reached


@dataclass(frozen=True)
class CreateFailure:
    http_status: int
    code: int
    msg: str
    headers: dict[str, str]


@dataclass
class FakeTask:
    task_id: str
    request: dict[str, Any]
    scenario: Scenario
    created_at: float
    status_reads: int = 0
    read_times: list[float] = field(default_factory=list)

    @property
    def done_at(self) -> float:
        return self.created_at + self.scenario.duration


@dataclass
class FakeKie:
    api_key: str
    scenario: Scenario = field(default_factory=Scenario)
    next_scenarios: deque[Scenario] = field(default_factory=deque)
    by_prompt: dict[str, Scenario] = field(default_factory=dict)  # a task's, by its prompt
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    created: list[FakeTask] = field(default_factory=list)
    create_attempts: int = 0
    attempt_times: list[float] = field(default_factory=list)  # when each create arrived
    image_fetches: int = 0
    head_requests: int = 0  # HEADs of result files: what the bot asked before fetching
    hmac_key: str | None = None  # sign callbacks, as an account with signing turned on does
    create_delay: float = 0.0  # seconds between making a task and answering with its id
    # Set: the create's answer waits for it after the task is made (a test kills the bot
    # while the answer is on its way, then lets it go).
    create_gate: asyncio.Event | None = None
    max_running: int = 0  # the account's concurrency limit (0: none); past it, code 429
    refused_429: int = 0
    unknown_reads: int = 0  # status reads of tasks this account never made
    uploads: dict[str, bytes] = field(default_factory=dict)
    callbacks: list[CallbackAttempt] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)  # tasks whose result files are gone
    credits: float = 1000.0  # the account's balance; at 0 every create answers 402
    credit_checks: int = 0
    image_url_fetches: list[str] = field(default_factory=list)  # images fetched by URL

    def __post_init__(self) -> None:
        self._create_failures: deque[CreateFailure] = deque()
        self._callback_senders: set[asyncio.Task[None]] = set()
        self._callback_client = httpx.AsyncClient(timeout=15.0)
        self._server = LoopbackServer(Starlette(routes=self.routes()))
        self.url = ""

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/jobs/createTask", self._create, methods=["POST"]),
            Route("/api/v1/jobs/recordInfo", self._record_info, methods=["GET"]),
            Route("/api/v1/chat/credit", self._credit, methods=["GET"]),
            Route("/api/file-stream-upload", self._upload, methods=["POST"]),
            *self.file_routes(),
        ]

    def file_routes(self) -> list[Route]:
        return [
            Route("/files/{task_id}/{index:int}.{suffix}", self._result, methods=["GET"]),
            Route("/uploads/{token}", self._uploaded, methods=["GET"]),
        ]

    async def start(self) -> None:
        self.url = await self._server.start()

    async def stop(self) -> None:
        for sender in self._callback_senders:
            sender.cancel()
        await asyncio.gather(*self._callback_senders, return_exceptions=True)
        await self._callback_client.aclose()
        await self._server.stop()

    def fail_creates(
        self,
        code: int,
        msg: str,
        *,
        times: int = 1,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` creations answer `code` (HTTP 200 unless told, as kie does)."""
        for _ in range(times):
            self._create_failures.append(CreateFailure(http_status, code, msg, headers or {}))

    def next_failure(self) -> CreateFailure | None:
        return self._create_failures.popleft() if self._create_failures else None

    def new_task(self, request: dict[str, Any], *, failure: str | None = None) -> FakeTask:
        """A task on the clock; `failure`: it fails with that message when its time comes."""
        prompt = request.get("input", {}).get("prompt")
        if prompt in self.by_prompt:
            scenario = self.by_prompt[prompt]
        else:
            scenario = self.next_scenarios.popleft() if self.next_scenarios else self.scenario
        if failure is not None:
            scenario = replace(scenario, outcome="fail", fail_code="400", fail_msg=failure)
        task = FakeTask(uuid.uuid4().hex, request, scenario, time.time())
        self.tasks[task.task_id] = task
        self.created.append(task)
        return task

    def expire_results(self) -> None:
        """A day has passed: the result files of every task made so far are gone (the
        upstreams keep them about 24 hours)."""
        self.expired.update(self.tasks)

    async def image_problem(self, urls: object) -> str | None:
        """What the upstream says of images it is given by URL (it fetches them): None if
        every one is a JPEG, PNG or WEBP it could fetch."""
        for url in urls if isinstance(urls, list) else []:
            try:
                response = await self._callback_client.get(str(url))
            except httpx.HTTPError:
                return "Failed to download the image"
            self.image_url_fetches.append(str(url))
            if response.status_code != 200 or not response.content.startswith(
                (b"\x89PNG", b"\xff\xd8\xff", b"RIFF")
            ):
                return "File type not supported"
        return None

    def state(self, task: FakeTask, now: float) -> str:
        """waiting, generating, success or fail, by the task's clock."""
        queued_for = task.scenario.queued_for
        if now < task.created_at + (
            task.scenario.duration * 0.3 if queued_for is None else queued_for
        ):
            return "waiting"
        if now < task.done_at:
            return "generating"
        return "success" if task.scenario.outcome == "success" else "fail"

    def result_urls(self, task: FakeTask) -> list[str]:
        suffix = self.suffix(task)
        return [
            f"{self.url}/files/{task.task_id}/{i}.{suffix}" for i in range(self.result_count(task))
        ]

    # --- endpoints ----------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        self.create_attempts += 1
        self.attempt_times.append(time.time())
        if not self._authorized(request):
            return _answer(401, "You do not have access permissions")
        try:
            body = await request.json()
        except ValueError:
            return _answer(422, "request body is not JSON")
        # Decided with no wait before the task is made: a request whose body was still on
        # its way when the account began to refuse is refused too, as it would be upstream.
        if failure := self.next_failure():
            return _answer(
                failure.code, failure.msg, http_status=failure.http_status, headers=failure.headers
            )
        if self.credits <= 0:
            return _answer(402, "Insufficient credits")
        problem = _validate_create(body)
        if problem:
            return _answer(422, problem)
        if self.max_running:
            now = time.time()
            if sum(1 for t in self.created if t.done_at > now) >= self.max_running:
                self.refused_429 += 1
                return _answer(429, "too many running tasks", headers={"Retry-After": "1"})
        task = self.new_task(
            body, failure=await self.image_problem(body["input"].get("image_urls"))
        )
        if body.get("callBackUrl") and task.scenario.callback == "send":
            self.send_callbacks_later(task, body["callBackUrl"])
        if self.create_delay:
            await asyncio.sleep(self.create_delay)  # made upstream, the answer still on its way
        if self.create_gate is not None:
            await self.create_gate.wait()
        return _answer(200, "success", data={"taskId": task.task_id})

    def finish(self, task: FakeTask) -> None:
        """End the task now (a test holds a task open with a long duration, then lets it
        end when it chooses), and send its callback as the upstream would."""
        # Done means done: not "waiting" a moment more either (a callback, sent now, must
        # find the task finished, as a real upstream's does).
        task.scenario = replace(
            task.scenario,
            duration=max(0.0, time.time() - task.created_at),
            not_ready_for=0.0,
            queued_for=0.0,
        )
        url = task.request.get("callBackUrl")
        if url and task.scenario.callback == "send":
            self.send_callbacks_later(task, url)

    def send_callbacks_later(self, task: FakeTask, url: str) -> None:
        sender = asyncio.create_task(self._send_callbacks(task, url))
        self._callback_senders.add(sender)
        sender.add_done_callback(self._callback_senders.discard)

    async def _send_callbacks(self, task: FakeTask, url: str) -> None:
        """POST the documented callback when the task ends; retry on failure like the
        upstream does (it gives up after a few tries)."""
        due = task.done_at + task.scenario.callback_delay
        await asyncio.sleep(max(0.0, due - time.time()) + 0.002)  # timers may wake a hair early
        for _ in range(task.scenario.callback_repeats):
            for attempt in range(3):
                status = await self.post_callback(task, url)
                if status is not None and 200 <= status < 300:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))

    def callback_body(self, task: FakeTask) -> dict[str, Any]:
        record = self.record(task, time.time())
        success = record["state"] == "success"
        return {
            "code": 200 if success else 501,
            "msg": "Playground task completed successfully."
            if success
            else "Playground task failed.",
            "data": record,
        }

    async def post_callback(
        self, task: FakeTask, url: str, *, body: dict[str, Any] | None = None
    ) -> int | None:
        if body is None:
            body = self.callback_body(task)
        headers = {}
        if self.hmac_key:
            timestamp = str(int(time.time()))
            digest = hmac.new(
                self.hmac_key.encode(), f"{task.task_id}.{timestamp}".encode(), hashlib.sha256
            ).digest()
            headers = {
                "X-Webhook-Timestamp": timestamp,
                "X-Webhook-Signature": base64.b64encode(digest).decode(),
            }
        try:
            response = await self._callback_client.post(url, json=body, headers=headers)
            status: int | None = response.status_code
        except httpx.HTTPError:
            status = None
        self.callbacks.append(CallbackAttempt(task.task_id, time.time(), status))
        return status

    async def _record_info(self, request: Request) -> Response:
        if not self._authorized(request):
            return _answer(401, "You do not have access permissions")
        task_id = request.query_params.get("taskId", "")
        task = self.tasks.get(task_id)
        if task is None:
            self.unknown_reads += 1
            return _answer(404, "task not found")
        task.status_reads += 1
        now = time.time()
        task.read_times.append(now)
        if now < task.created_at + task.scenario.not_ready_for:
            return _answer(422, "recordInfo is null")
        return _answer(200, "success", data=self.record(task, now))

    async def _credit(self, request: Request) -> Response:
        if not self._authorized(request):
            return _answer(401, "You do not have access permissions")
        self.credit_checks += 1
        return _answer(200, "success", data=self.credits)

    async def _result(self, request: Request) -> Response:
        task = self.tasks.get(request.path_params["task_id"])
        index, suffix = request.path_params["index"], request.path_params["suffix"]
        if (
            task is None
            or task.task_id in self.expired
            or index >= self.result_count(task)
            or suffix != self.suffix(task)
        ):
            return Response(status_code=404)
        if request.method == "HEAD" and not task.scenario.size_on_head:
            return Response(status_code=405)
        if request.method == "GET":
            self.image_fetches += 1
        else:
            self.head_requests += 1
        size = dict(task.scenario.sizes).get(index, task.scenario.image_bytes)
        if suffix == "mp4":
            return Response(mp4(pad_to=size), media_type="video/mp4")
        return Response(png(index, pad_to=size), media_type="image/png")

    async def _upload(self, request: Request) -> Response:
        """The file upload API (kie's file-stream-upload): multipart `file` and `uploadPath`."""
        if not self._authorized(request):
            return JSONResponse({"success": False, "code": 401, "msg": "unauthorized"})
        form = await request.form(max_part_size=20 * 1024 * 1024)
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not form.get("uploadPath"):
            return JSONResponse({"success": False, "code": 422, "msg": "file and uploadPath"})
        content = await upload.read()
        token = uuid.uuid4().hex
        self.uploads[token] = content
        url = f"{self.url}/uploads/{token}"
        return JSONResponse(
            {
                "success": True,
                "code": 200,
                "msg": "File uploaded successfully",
                "data": {"fileName": upload.filename, "downloadUrl": url, "fileSize": len(content)},
            }
        )

    async def _uploaded(self, request: Request) -> Response:
        content = self.uploads.get(request.path_params["token"])
        if content is None:
            return Response(status_code=404)
        return Response(content, media_type="application/octet-stream")

    def suffix(self, task: FakeTask) -> str:
        kind = task.scenario.result
        if kind == "auto":
            model = task.request.get("model", "grok-imagine/text-to-video")
            kind = "image" if model == "grok-imagine/text-to-image" else "video"
        return "png" if kind == "image" else "mp4"

    def result_count(self, task: FakeTask) -> int:
        return task.scenario.images if self.suffix(task) == "png" else 1

    # --- the task record, as recordInfo and callbacks show it ------------------------------

    def record(self, task: FakeTask, now: float) -> dict[str, Any]:
        scenario = task.scenario
        record: dict[str, Any] = {
            "taskId": task.task_id,
            "model": task.request["model"],
            "param": json.dumps(task.request),
            "createTime": int(task.created_at * 1000),
            "updateTime": int(now * 1000),
            "consumeCredits": 0,
            "costTime": 0,
            "resultJson": "",
            "failCode": "",
            "failMsg": "",
            "completeTime": None,
        }
        state = self.state(task, now)
        if state in ("waiting", "generating"):
            record["state"] = state
        elif state == "success":
            record.update(
                state="success",
                resultJson=json.dumps({"resultUrls": self.result_urls(task)}),
                consumeCredits=5,
                costTime=int(scenario.duration),
                completeTime=int(task.done_at * 1000),
            )
        else:
            record.update(
                state="fail",
                failCode=scenario.fail_code,
                failMsg=scenario.fail_msg,
                completeTime=int(task.done_at * 1000),
            )
        return record

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"


def _validate_create(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be an object"
    if body.get("model") not in MODELS:
        return "model is not supported"
    payload = body.get("input")
    if not isinstance(payload, dict):
        return "input is required"
    callback = body.get("callBackUrl")
    if callback is not None and not (
        isinstance(callback, str) and callback.startswith(("http://", "https://"))
    ):
        return "callBackUrl must be a URL"
    model = body["model"]
    prompt = payload.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 5000):
        return "prompt must be a string of at most 5000 characters"
    if model in ("grok-imagine/text-to-image", "grok-imagine/text-to-video"):
        if not isinstance(prompt, str) or not prompt.strip():
            return "prompt is required"
        if payload.get("aspect_ratio", "1:1") not in ASPECT_RATIOS:
            return "aspect_ratio is not supported"
    video = model in ("grok-imagine/image-to-video", "grok-imagine/text-to-video")
    if video and payload.get("mode", "normal") not in ("fun", "normal", "spicy"):
        return "mode must be fun, normal or spicy"
    if model == "grok-imagine/image-to-video":
        urls, task_id = payload.get("image_urls"), payload.get("task_id")
        if (urls is None) == (task_id is None):
            return "give exactly one of image_urls or task_id"
        if urls is not None and not (
            isinstance(urls, list) and len(urls) == 1 and str(urls[0]).startswith("http")
        ):
            return "image_urls must hold one URL"
        if task_id is not None and not (
            isinstance(task_id, str) and payload.get("index") in range(6)
        ):
            return "task_id needs an index from 0 to 5"
    if model == "grok-imagine/upscale" and not isinstance(payload.get("task_id"), str):
        return "task_id is required"
    return None


def _answer(
    code: int,
    msg: str,
    *,
    data: Any = None,
    http_status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=http_status, headers=headers)


def mp4(*, pad_to: int = 0) -> bytes:
    """Enough of an MP4 for a server that looks at its `ftyp` box."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return head + b"\x00" * max(64, pad_to - len(head))


def png(seed: int, *, pad_to: int = 0) -> bytes:
    """A valid 8×8 PNG of one colour picked by `seed`, optionally padded to `pad_to` bytes."""
    colour = bytes(((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256))
    raw = b"".join(b"\x00" + colour * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    image = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
    padding = max(0, pad_to - len(image) - 24)
    if padding:
        image += chunk(b"tEXt", b"pad\x00" + b"x" * padding)
    return image + chunk(b"IEND", b"")
