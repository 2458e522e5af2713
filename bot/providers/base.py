"""What the bot needs from an upstream, whatever dialect it speaks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.core.lifecycle import TaskKind

# The model names resellers share (kie, apikley, grok5imagine).
MODELS = {
    TaskKind.TEXT_TO_IMAGE: "grok-imagine/text-to-image",
    TaskKind.IMAGE_TO_VIDEO: "grok-imagine/image-to-video",
    TaskKind.TEXT_TO_VIDEO: "grok-imagine/text-to-video",
    TaskKind.UPSCALE: "grok-imagine/upscale",
}


def http_urls(values: object) -> tuple[str, ...]:
    """The http(s) URLs in a list from an answer; anything else in it is ignored."""
    if not isinstance(values, list):
        return ()
    return tuple(v for v in values if isinstance(v, str) and v.startswith(("http://", "https://")))


class UpstreamState(StrEnum):
    QUEUED = "queued"
    WORKING = "working"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One task for the upstream, whatever its kind; fields a kind does not use stay None."""

    kind: TaskKind
    prompt: str | None = None
    aspect_ratio: str | None = None
    mode: str | None = None
    source_task_id: str | None = None  # the upstream's id of an earlier task (animate, upscale)
    index: int | None = None  # which image of that task, 0-based
    image_url: str | None = None  # an image of the user's own, at a URL the upstream can fetch
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
        out_of_credits: bool = False,
    ) -> None:
        super().__init__(f"{kind}: {message}" + (f" (code {code})" if code is not None else ""))
        self.kind = kind
        self.message = message
        self.code = code
        self.retry_after = retry_after
        self.out_of_credits = out_of_credits  # the account itself is empty: tell operators


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an upstream can do; the bot offers nothing else."""

    text_to_image: bool
    image_to_video_from_task: bool  # a generated image by task id and index
    image_to_video_from_url: bool  # any image at a URL
    text_to_video: bool
    upscale: bool
    callbacks: bool
    file_upload: bool
    modes: tuple[str, ...]  # animate/video modes it takes; empty: it chooses
    ratios: tuple[str, ...]  # aspect ratios it takes; empty: it chooses
    balance: bool = False  # an endpoint for the account's credits (a check that costs nothing)

    @property
    def image_to_video(self) -> bool:
        return self.image_to_video_from_task or self.image_to_video_from_url

    @staticmethod
    def union(each: Sequence[Capabilities]) -> Capabilities:
        """What a pool of accounts can do: whatever any one of them can."""

        def merged(values: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(value for group in values for value in group))

        return Capabilities(
            text_to_image=any(c.text_to_image for c in each),
            image_to_video_from_task=any(c.image_to_video_from_task for c in each),
            image_to_video_from_url=any(c.image_to_video_from_url for c in each),
            text_to_video=any(c.text_to_video for c in each),
            upscale=any(c.upscale for c in each),
            callbacks=any(c.callbacks for c in each),
            file_upload=any(c.file_upload for c in each),
            modes=merged(c.modes for c in each),
            ratios=merged(c.ratios for c in each),
            balance=any(c.balance for c in each),
        )


class Provider(Protocol):
    name: str
    capabilities: Capabilities

    async def create_task(self, request: GenerationRequest) -> str:
        """Create a task; returns the upstream's task id."""
        ...

    async def upload_file(self, content: bytes, file_name: str) -> str | None:
        """Put a file where the upstream can fetch it; its URL, or None if this upstream has
        no upload API (the bot then serves the file itself)."""
        ...

    async def get_status(self, upstream_task_id: str) -> UpstreamStatus: ...

    def callback_task_id(self, body: object) -> str | None:
        """The upstream task id a callback body names (the body is only a hint)."""
        ...

    async def get_account_credits(self) -> float:
        """The upstream account's remaining credits."""
        ...

    async def aclose(self) -> None: ...
