"""What the bot needs from an upstream, whatever dialect it speaks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class UpstreamState(StrEnum):
    QUEUED = "queued"
    WORKING = "working"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    aspect_ratio: str
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    state: UpstreamState
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_message: str | None = None


class ErrorKind(StrEnum):
    TRANSIENT = "transient"  # try again later: 5xx, 429, connection refused
    REJECTED = "rejected"  # the request itself is wrong or refused; retrying won't help
    UNAVAILABLE = "unavailable"  # the account or service cannot work now (key, credits, outage)
    NOT_READY = "not_ready"  # the task exists but its record is not readable yet
    NOT_FOUND = "not_found"  # no such task upstream
    UNKNOWN_OUTCOME = "unknown_outcome"  # the request may or may not have been carried out


class ProviderError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{kind}: {message}" + (f" (code {code})" if code is not None else ""))
        self.kind = kind
        self.message = message
        self.code = code
        self.retry_after = retry_after


class Provider(Protocol):
    name: str

    async def create_image_task(self, request: ImageRequest) -> str:
        """Create a text-to-image task; returns the upstream's task id."""
        ...

    async def get_status(self, upstream_task_id: str) -> UpstreamStatus: ...

    async def get_account_credits(self) -> float:
        """The upstream account's remaining credits."""
        ...

    async def aclose(self) -> None: ...
