"""What every dialect's HTTP has in common: a Bearer-authenticated JSON API whose answers are
`{"code": …, "msg" | "message": …, "data": …}`, whose errors may come as an HTTP status or
as a business `code` inside an HTTP 200, and whose rate limits say when to come back."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from bot.providers.base import Capabilities, ErrorKind, ProviderError

# HTTP statuses (and business codes, where a dialect uses the same numbers) that mean the
# same thing everywhere.
COMMON_KINDS: Mapping[int, ErrorKind] = {
    400: ErrorKind.REJECTED,
    401: ErrorKind.UNAVAILABLE,  # bad key
    402: ErrorKind.UNAVAILABLE,  # the account is out of credits
    403: ErrorKind.UNAVAILABLE,
    404: ErrorKind.NOT_FOUND,
    422: ErrorKind.REJECTED,
    429: ErrorKind.TRANSIENT,
}
OUT_OF_CREDITS = 402


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int
    msg: str | None = None
    message: str | None = None
    data: Any = None

    @property
    def text(self) -> str:
        return self.msg or self.message or ""


class JsonApi:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        code_kinds: Mapping[int, ErrorKind],
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._code_kinds = {**COMMON_KINDS, **code_kinds}
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key.get_secret_value()}"},
            timeout=timeout or httpx.Timeout(15.0, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def call(
        self, method: str, path: str, *, creates: bool = False, **kwargs: Any
    ) -> Envelope:
        """One request; the envelope of a success (`code` 200), else a `ProviderError`.

        `creates`: the request makes something upstream, so a time-out after it was sent
        leaves its outcome unknown (it must not simply be repeated)."""
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            kind = ErrorKind.UNKNOWN_OUTCOME if creates else ErrorKind.TRANSIENT
            if isinstance(error, httpx.ConnectTimeout):
                kind = ErrorKind.TRANSIENT
            raise ProviderError(kind, f"{type(error).__name__} talking to the upstream") from error
        except httpx.TransportError as error:
            kind = ErrorKind.TRANSIENT
            if creates and not isinstance(error, httpx.ConnectError):
                kind = ErrorKind.UNKNOWN_OUTCOME
            raise ProviderError(kind, f"{type(error).__name__} talking to the upstream") from error

        wait = retry_after(response)
        try:
            envelope: Envelope | None = Envelope.model_validate(response.json())
        except (ValueError, ValidationError):
            envelope = None
        if envelope is None:
            # Not the dialect's JSON at all: a proxy's error page, or a broken answer.
            raise ProviderError(
                kind_for_http(response.status_code),
                f"HTTP {response.status_code} without a readable body",
                code=response.status_code,
                retry_after=wait,
            )
        if response.status_code == 200 and envelope.code == 200:
            return envelope
        code = envelope.code if envelope.code != 200 else response.status_code
        raise ProviderError(
            self.kind_for(code, http_status=response.status_code),
            envelope.text or f"code {code}",
            code=code,
            retry_after=wait,
            out_of_credits=code == OUT_OF_CREDITS or response.status_code == OUT_OF_CREDITS,
        )

    def kind_for(self, code: int, *, http_status: int) -> ErrorKind:
        if code in self._code_kinds:
            return self._code_kinds[code]
        if http_status >= 500 or code >= 500:
            return ErrorKind.TRANSIENT
        return ErrorKind.REJECTED


def kind_for_http(status: int) -> ErrorKind:
    if status in COMMON_KINDS:
        return COMMON_KINDS[status]
    if 400 <= status < 500:
        return ErrorKind.REJECTED
    return ErrorKind.TRANSIENT


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds to wait before the next request, from `Retry-After` or `X-RateLimit-Reset`
    (seconds from now, or a Unix time: both are seen in the wild)."""
    for header in ("retry-after", "x-ratelimit-reset"):
        value = response.headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if seconds > 1_000_000_000:  # a Unix time
            seconds -= time.time() if now is None else now
        if header == "x-ratelimit-reset" and response.headers.get("x-ratelimit-remaining") not in (
            None,
            "0",
        ):
            continue  # requests are left; the reset time is no reason to wait
        return max(0.0, seconds)
    return None


class JsonProvider:
    """What the dialects share: a name, a JSON API, and no balance endpoint or upload API
    unless a dialect has one (and overrides these)."""

    name: str
    capabilities: Capabilities

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        name: str | None = None,
        code_kinds: Mapping[int, ErrorKind] | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        self._api = JsonApi(
            base_url=base_url,
            api_key=api_key,
            code_kinds=code_kinds or {},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._api.aclose()

    async def _create(self, path: str, body: dict[str, Any], id_field: str) -> str:
        """POST a new task; the id the upstream gave it. An answer without one leaves the
        outcome unknown (the task may exist upstream)."""
        envelope = await self._api.call("POST", path, creates=True, json=body)
        data = envelope.data if isinstance(envelope.data, dict) else {}
        task_id = data.get(id_field)
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(ErrorKind.UNKNOWN_OUTCOME, f"{path} answered without {id_field}")
        return task_id

    async def get_account_credits(self) -> float:
        raise ProviderError(ErrorKind.UNAVAILABLE, f"{self.name} has no balance endpoint")

    async def upload_file(self, content: bytes, file_name: str) -> str | None:
        return None
