"""The kie dialect (kie.ai, and apikley at its own base URL).

Business errors come back as HTTP 200 with the error in the body's `code`, so both the
HTTP status and `code` are checked. The message field is `msg` on some pages and
`message` on others; both are read. Unknown fields are ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from bot.lifecycle import TaskKind
from bot.providers.base import (
    ErrorKind,
    GenerationRequest,
    ProviderError,
    UpstreamState,
    UpstreamStatus,
)

_log = logging.getLogger(__name__)

MODELS = {
    TaskKind.TEXT_TO_IMAGE: "grok-imagine/text-to-image",
    TaskKind.IMAGE_TO_VIDEO: "grok-imagine/image-to-video",
    TaskKind.TEXT_TO_VIDEO: "grok-imagine/text-to-video",
    TaskKind.UPSCALE: "grok-imagine/upscale",
}

_STATES = {
    "waiting": UpstreamState.QUEUED,
    "queuing": UpstreamState.QUEUED,
    "generating": UpstreamState.WORKING,
    "success": UpstreamState.SUCCEEDED,
    "fail": UpstreamState.FAILED,
}

# Business codes (../shared/UPSTREAM.md, "Errors").
_CODE_KINDS = {
    401: ErrorKind.UNAVAILABLE,  # bad key
    402: ErrorKind.UNAVAILABLE,  # the account is out of credits
    404: ErrorKind.NOT_FOUND,
    422: ErrorKind.REJECTED,
    429: ErrorKind.TRANSIENT,
    433: ErrorKind.UNAVAILABLE,  # sub-key over its limit
    455: ErrorKind.UNAVAILABLE,  # maintenance
    500: ErrorKind.TRANSIENT,
    501: ErrorKind.REJECTED,  # generation failed
    505: ErrorKind.UNAVAILABLE,  # feature disabled
}


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int
    msg: str | None = None
    message: str | None = None
    data: Any = None

    @property
    def text(self) -> str:
        return self.msg or self.message or ""


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    taskId: str | None = None
    state: str
    resultJson: str | None = None
    failCode: str | int | None = None
    failMsg: str | None = None


class KieProvider:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: SecretStr,
        upload_url: str | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._upload_url = upload_url.rstrip("/") if upload_url else None
        self.can_upload = self._upload_url is not None
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key.get_secret_value()}"},
            timeout=timeout or httpx.Timeout(15.0, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def upload_file(self, content: bytes, file_name: str) -> str | None:
        """The kie file upload API (files live 3 days): multipart `file`, `uploadPath`."""
        if self._upload_url is None:
            return None
        try:
            response = await self._client.post(
                f"{self._upload_url}/api/file-stream-upload",
                files={"file": (file_name, content)},
                data={"uploadPath": "imagine-bot", "fileName": file_name},
                timeout=httpx.Timeout(60.0, connect=5.0),
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderError(ErrorKind.TRANSIENT, f"upload failed: {error}") from error
        if not isinstance(body, dict):
            raise ProviderError(ErrorKind.TRANSIENT, "upload answered without a JSON object")
        data = body.get("data")
        url = data.get("downloadUrl") or data.get("fileUrl") if isinstance(data, dict) else None
        if response.status_code != 200 or body.get("code") != 200 or not isinstance(url, str):
            kind = ErrorKind.TRANSIENT
            if response.status_code != 200:
                kind = _kind_for_http(response.status_code)
            raise ProviderError(kind, f"upload refused: {body.get('msg') or response.status_code}")
        return url

    async def create_task(self, request: GenerationRequest) -> str:
        body: dict[str, Any] = {"model": MODELS[request.kind], "input": _input_for(request)}
        if request.callback_url:
            body["callBackUrl"] = request.callback_url
        envelope = await self._call("POST", "/api/v1/jobs/createTask", creates=True, json=body)
        task_id = envelope.data.get("taskId") if isinstance(envelope.data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(ErrorKind.UNKNOWN_OUTCOME, "createTask answered without a taskId")
        return task_id

    async def get_status(self, upstream_task_id: str) -> UpstreamStatus:
        envelope = await self._call(
            "GET", "/api/v1/jobs/recordInfo", params={"taskId": upstream_task_id}
        )
        try:
            record = _Record.model_validate(envelope.data)
        except ValidationError as error:
            raise ProviderError(ErrorKind.TRANSIENT, "unreadable task record") from error
        state = _STATES.get(record.state)
        if state is None:
            _log.warning("unknown upstream state %r; treating it as working", record.state)
            state = UpstreamState.WORKING
        if state is UpstreamState.SUCCEEDED:
            urls = _result_urls(record.resultJson)
            if not urls:
                return UpstreamStatus(
                    UpstreamState.FAILED, fail_message="the service returned no images"
                )
            return UpstreamStatus(state, result_urls=urls)
        if state is UpstreamState.FAILED:
            return UpstreamStatus(
                state,
                fail_code=None if record.failCode is None else str(record.failCode),
                fail_message=record.failMsg or None,
            )
        return UpstreamStatus(state)

    async def get_account_credits(self) -> float:
        envelope = await self._call("GET", "/api/v1/chat/credit")
        if not isinstance(envelope.data, int | float):
            raise ProviderError(
                ErrorKind.TRANSIENT, "the credit endpoint answered without a number"
            )
        return float(envelope.data)

    async def _call(
        self, method: str, path: str, *, creates: bool = False, **kwargs: Any
    ) -> _Envelope:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            # A create that timed out may still have been carried out: never blindly repeat it.
            kind = ErrorKind.UNKNOWN_OUTCOME if creates else ErrorKind.TRANSIENT
            if isinstance(error, httpx.ConnectTimeout):
                kind = ErrorKind.TRANSIENT
            raise ProviderError(kind, f"{type(error).__name__} talking to the upstream") from error
        except httpx.TransportError as error:
            kind = ErrorKind.TRANSIENT
            if creates and not isinstance(error, httpx.ConnectError):
                kind = ErrorKind.UNKNOWN_OUTCOME
            raise ProviderError(kind, f"{type(error).__name__} talking to the upstream") from error

        retry_after = _retry_after(response)
        try:
            envelope = _Envelope.model_validate(response.json())
        except (ValueError, ValidationError):
            envelope = None
        if envelope is None:
            # Not the dialect's JSON at all: a proxy's error page, or a broken answer.
            raise ProviderError(
                _kind_for_http(response.status_code),
                f"HTTP {response.status_code} without a readable body",
                code=response.status_code,
                retry_after=retry_after,
            )
        if response.status_code != httpx.codes.OK:
            raise ProviderError(
                _kind_for(envelope.code, fallback_http=response.status_code),
                envelope.text or f"HTTP {response.status_code}",
                code=envelope.code,
                retry_after=retry_after,
            )
        if envelope.code == 200:
            return envelope
        if envelope.code == 422 and "recordinfo is null" in envelope.text.lower():
            raise ProviderError(ErrorKind.NOT_READY, envelope.text, code=422)
        raise ProviderError(
            _kind_for(envelope.code, fallback_http=response.status_code),
            envelope.text or f"code {envelope.code}",
            code=envelope.code,
            retry_after=retry_after,
        )


def _input_for(request: GenerationRequest) -> dict[str, Any]:
    """The documented `input` of each model; optional fields only when they have a value."""
    fields: dict[str, Any]
    match request.kind:
        case TaskKind.TEXT_TO_IMAGE | TaskKind.TEXT_TO_VIDEO:
            fields = {"prompt": request.prompt, "aspect_ratio": request.aspect_ratio}
        case TaskKind.IMAGE_TO_VIDEO if request.image_url:
            # An external image: spicy is not supported (the upstream would switch to normal).
            fields = {
                "image_urls": [request.image_url],
                "prompt": request.prompt,
                "mode": request.mode,
            }
        case TaskKind.IMAGE_TO_VIDEO:
            fields = {
                "task_id": request.source_task_id,
                "index": request.index,
                "prompt": request.prompt,
                "mode": request.mode,
            }
        case TaskKind.UPSCALE:
            fields = {"task_id": request.source_task_id}
    return {name: value for name, value in fields.items() if value is not None}


def _kind_for(code: int, *, fallback_http: int) -> ErrorKind:
    if code in _CODE_KINDS:
        return _CODE_KINDS[code]
    if fallback_http >= 500 or code >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.REJECTED


def _kind_for_http(status: int) -> ErrorKind:
    if status in (401, 402, 403):
        return ErrorKind.UNAVAILABLE
    if status == 404:
        return ErrorKind.NOT_FOUND
    if 400 <= status < 500 and status != 429:
        return ErrorKind.REJECTED
    return ErrorKind.TRANSIENT


def _result_urls(result_json: str | None) -> tuple[str, ...]:
    if not result_json:
        return ()
    try:
        parsed = json.loads(result_json)
    except ValueError:
        return ()
    urls = parsed.get("resultUrls") if isinstance(parsed, dict) else None
    if not isinstance(urls, list):
        return ()
    return tuple(url for url in urls if isinstance(url, str) and url.startswith("http"))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
