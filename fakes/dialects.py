"""Test servers for the other dialects (docs/upstream/pages/003 and 004), on the same
task clock and result files as the kie one. Strict where the documentation is explicit:
fields it does not list are refused."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.kie import ASPECT_RATIOS, FakeKie, FakeTask

GROK5_MODELS = {
    "grok-imagine/text-to-image",
    "grok-imagine/text-to-video",
    "grok-imagine/image-to-video",
    "grok-imagine/upscale",
}


class FakeGrok5Imagine(FakeKie):
    """`POST /api/generate`, `GET|POST /api/status`; errors as HTTP statuses."""

    def routes(self) -> list[Route]:
        return [
            Route("/api/generate", self._generate, methods=["POST"]),
            Route("/api/status", self._status, methods=["GET", "POST"]),
            *self.file_routes(),
        ]

    async def _generate(self, request: Request) -> Response:
        self.create_attempts += 1
        if not self._authorized(request):
            return _error(401, "Unauthorized")
        if failure := self.next_failure():
            return _error(failure.code, failure.msg, headers=failure.headers)
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON")
        problem = _grok5_problem(body)
        if problem:
            return _error(400, problem)
        body.setdefault("model", "grok-imagine/text-to-image")
        task = self.new_task(
            body, failure=await self.image_problem(body["input"].get("image_urls"))
        )
        if body.get("callback_url") and task.scenario.callback == "send":
            self.send_callbacks_later(task, body["callback_url"])
        return _ok({"task_id": task.task_id, "status": "IN_PROGRESS"})

    async def _status(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "Unauthorized")
        task_id = request.query_params.get("task_id")
        if request.method == "POST" and task_id is None:
            task_id = (await request.json()).get("task_id")
        task = self.tasks.get(task_id or "")
        if task is None:
            return _error(404, "task not found")
        task.status_reads += 1
        return _ok(self.status_data(task))

    def status_data(self, task: FakeTask) -> dict[str, Any]:
        state = self.state(task, time.time())
        status = {"success": "SUCCESS", "fail": "FAILED"}.get(state, "IN_PROGRESS")
        return {
            "task_id": task.task_id,
            "status": status,
            "request": {"model": task.request["model"], "input": task.request["input"]},
            "response": {"resultUrls": self.result_urls(task)} if status == "SUCCESS" else None,
            "consumed_credits": 5 if status != "FAILED" else 0,
            "error_message": task.scenario.fail_msg if status == "FAILED" else None,
            "created_at": "2026-11-21T12:00:00Z",
        }

    def callback_body(self, task: FakeTask) -> dict[str, Any]:
        return {"code": 200, "message": "success", "data": self.status_data(task)}


class FakeGrokImagineApi(FakeKie):
    """Video only: `POST /v1/generate`, `GET /v1/status`; no callbacks; errors as
    `{"code", "message", "error"}` with the same HTTP status."""

    def routes(self) -> list[Route]:
        return [
            Route("/v1/generate", self._generate, methods=["POST"]),
            Route("/v1/status", self._status, methods=["GET"]),
            *self.file_routes(),
        ]

    async def _generate(self, request: Request) -> Response:
        self.create_attempts += 1
        if not self._authorized(request):
            return _error(401, "Unauthorized", error="UNAUTHORIZED")
        if failure := self.next_failure():
            return _error(failure.code, failure.msg, headers=failure.headers, error="ERROR")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Invalid request: body is not JSON", error="INVALID_REQUEST")
        problem = _grokapi_problem(body)
        if problem:
            return _error(400, f"Invalid request: {problem}", error="INVALID_REQUEST")
        task = self.new_task(body, failure=await self.image_problem(body.get("images")))
        return _ok({"task_id": task.task_id})

    async def _status(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "Unauthorized", error="UNAUTHORIZED")
        task = self.tasks.get(request.query_params.get("task_id", ""))
        if task is None:
            return _error(404, "task not found", error="NOT_FOUND")
        task.status_reads += 1
        state = self.state(task, time.time())
        status = {"waiting": "pending", "generating": "processing", "success": "completed"}.get(
            state, "failed"
        )
        return _ok(
            {
                "task_id": task.task_id,
                "status": status,
                "request": task.request,
                "response": self.result_urls(task) if status == "completed" else [],
                "consumed_credits": 40,
                "error_message": task.scenario.fail_msg if status == "failed" else None,
                "created_at": "2026-11-21T12:00:00Z",
            }
        )


def _grok5_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be an object"
    unknown = set(body) - {"model", "input", "callback_url", "public"}
    if unknown:
        return f"unknown parameters: {sorted(unknown)}"
    model = body.get("model", "grok-imagine/text-to-image")
    if model not in GROK5_MODELS:
        return "model is not supported"
    payload = body.get("input")
    if not isinstance(payload, dict):
        return "input is required"
    unknown = set(payload) - {"prompt", "image_urls", "task_id"}
    if unknown:
        return f"unknown input parameters: {sorted(unknown)}"
    prompt = payload.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 5000):
        return "prompt must be a string of at most 5000 characters"
    if model in ("grok-imagine/text-to-image", "grok-imagine/text-to-video") and not prompt:
        return "prompt is required"
    if model == "grok-imagine/image-to-video" and not (
        payload.get("image_urls") or payload.get("task_id")
    ):
        return "image_urls is required"
    if model == "grok-imagine/upscale" and not payload.get("task_id"):
        return "task_id is required"
    return None


def _grokapi_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be an object"
    unknown = set(body) - {"mode", "prompt", "images", "ratio"}
    if unknown:
        return f"unknown parameters {sorted(unknown)}"
    if body.get("mode", "normal") not in ("fun", "normal", "spicy"):
        return "mode must be fun, normal or spicy"
    images = body.get("images")
    if images is not None and not (
        isinstance(images, list) and images and all(str(i).startswith("http") for i in images)
    ):
        return "images must be a list of URLs"
    if not body.get("prompt") and not images:
        return "The prompt parameter is required"
    if body.get("ratio", "1:1") not in ASPECT_RATIOS:
        return "ratio is not supported"
    return None


def _ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"code": 200, "message": "success", "data": data})


def _error(
    code: int, message: str, *, headers: dict[str, str] | None = None, error: str | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if error:
        body["error"] = error
    return JSONResponse(body, status_code=code if code >= 400 else 200, headers=headers)
