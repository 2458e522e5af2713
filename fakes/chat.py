"""The engine's ports held in memory, for engine tests with no Telegram and no HTTP: a chat
port that records what each task's chat was told, and an upstream that makes tasks when a
test says so.

`RecordingChat` behaves as the real port does where the engine depends on it: every call
leaves only while its claim holds (else `ClaimLost`), a chat closed to the bot answers
`ChatClosed`, a group that became a supergroup answers `ChatMoved`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from bot.core.lifecycle import TaskKind
from bot.core.task import Task
from bot.engine.chat import (
    Activity,
    ChatClosed,
    ChatMoved,
    ClaimLost,
    Offers,
    Posted,
    Refused,
    Sending,
    StatusView,
    Working,
)
from bot.providers import Capabilities, ErrorKind, GenerationRequest, ProviderError, UpstreamStatus
from bot.providers.base import UpstreamState


@dataclass(frozen=True, slots=True)
class Told:
    """One call that reached a chat: by which process's port, what, about which task."""

    by: str
    call: str
    task_id: int
    chat_id: int
    detail: object = None


class RecordingChat:
    def __init__(self, name: str, log: list[Told]) -> None:
        self.name = name
        self.log = log  # shared by the ports of several engines: one chat, seen by all
        self.fenced = 0  # calls not sent: the claim was another process's by then
        self.closed: set[int] = set()  # chats that answer "blocked"
        self.moved: dict[int, int] = {}  # chats that became supergroups: "moved to"
        self.repeated = 0  # status edits refused for changing nothing, as Telegram refuses them
        self._shown: dict[int, str] = {}  # status message → what it reads
        self._ids = itertools.count(1000)

    def busy(self, chat_id: int) -> bool:
        return False

    async def _leave(self, call: str, task: Task, sending: Sending, detail: object = None) -> int:
        if not await sending.holds():
            self.fenced += 1
            raise ClaimLost(f"task {task.id}")
        sending.gone = True
        if task.chat_id in self.moved:
            raise ChatMoved(self.moved[task.chat_id])
        if task.chat_id in self.closed:
            raise ChatClosed("blocked by the user")
        self.log.append(Told(self.name, call, task.id, task.chat_id, detail))
        return next(self._ids)

    async def post_status(self, task: Task, view: StatusView, sending: Sending) -> int:
        message_id = await self._leave("post_status", task, sending, view)
        self._shown[message_id] = _reads(view)
        return message_id

    async def edit_status(
        self, task: Task, message_id: int, view: StatusView, sending: Sending
    ) -> None:
        if self._shown.get(message_id) == _reads(view):
            # Telegram: "message is not modified" (400).
            self.repeated += 1
            raise Refused("message is not modified")
        await self._leave("edit_status", task, sending, view)
        self._shown[message_id] = _reads(view)

    async def remove_status(self, task: Task, message_id: int, sending: Sending) -> None:
        await self._leave("remove_status", task, sending, message_id)

    async def show_activity(self, task: Task, activity: Activity, sending: Sending) -> None:
        await self._leave("show_activity", task, sending, activity)

    async def send_result(self, task: Task, offers: Offers, sending: Sending) -> Posted:
        first = await self._leave("send_result", task, sending, tuple(task.result_urls))
        ids = [first + index for index in range(len(task.result_urls))]
        video = task.kind is not TaskKind.TEXT_TO_IMAGE
        return Posted(ids, [f"file-{m}" for m in ids], buttons_message_id=first if video else None)

    async def send_buttons(
        self, task: Task, reply_to: int, offers: Offers, sending: Sending
    ) -> int:
        return await self._leave("send_buttons", task, sending, offers)

    async def send_inline_result(self, task: Task, sending: Sending) -> None:
        await self._leave("send_inline_result", task, sending)

    async def tell_failure(self, task: Task, sending: Sending) -> None:
        await self._leave("tell_failure", task, sending, task.failure_kind)

    def calls(self, call: str) -> list[Told]:
        return [told for told in self.log if told.call == call]


def _reads(view: StatusView) -> str:
    """What a status message showing `view` reads, as far as telling two apart goes (the
    Telegram port shows "working" only for a task the upstream said it works on)."""
    if isinstance(view, Working):
        return f"{'working' if view.seen is UpstreamState.WORKING else 'queued'} {view.seconds}"
    return repr(view)


class MemoryUpstream:
    """An upstream account in memory: creates tasks (or refuses them with `refuse`), which
    finish when the test says (`finish`), or at once unless `hold`."""

    def __init__(self, name: str, *, hold: bool = False) -> None:
        self.name = name
        self.capabilities = Capabilities(
            text_to_image=True,
            image_to_video_from_task=True,
            image_to_video_from_url=False,
            text_to_video=True,
            upscale=True,
            callbacks=False,
            file_upload=False,
            modes=(),
            ratios=(),
            balance=True,
        )
        self.hold = hold
        self.state = UpstreamState.WORKING  # what a read of a held task says
        self.reads = 0
        self.refuse: ProviderError | None = None
        self.created: list[GenerationRequest] = []
        self._finished: set[str] = set()

    async def create_task(self, request: GenerationRequest) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.created.append(request)
        upstream_id = f"{self.name}-{len(self.created)}"
        if not self.hold:
            self._finished.add(upstream_id)
        return upstream_id

    def finish(self) -> None:
        """Every task made so far ends well."""
        self._finished.update(f"{self.name}-{n}" for n in range(1, len(self.created) + 1))

    async def upload_file(self, content: bytes, file_name: str) -> str | None:
        return None

    async def get_status(self, upstream_task_id: str) -> UpstreamStatus:
        self.reads += 1
        if upstream_task_id not in self._finished:
            return UpstreamStatus(self.state)
        urls = tuple(f"https://files.example/{upstream_task_id}/{i}.png" for i in range(6))
        return UpstreamStatus(UpstreamState.SUCCEEDED, urls)

    def callback_task_id(self, body: object) -> str | None:
        return None

    async def get_account_credits(self) -> float:
        if self.refuse is not None and self.refuse.out_of_credits:
            return 0.0
        return 100.0

    async def aclose(self) -> None:
        pass


def unavailable() -> ProviderError:
    return ProviderError(ErrorKind.UNAVAILABLE, "down for maintenance", code=503)
