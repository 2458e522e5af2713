"""The domain model of a generation task: what a request asks for (`NewTask`), what it costs
(`Charge`), the task as recorded (`Task`, moved through `bot.core.lifecycle`'s states), and an
upstream account's caps. Storage keeps them (`storage/tasks.py`); nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.constants import is_group_chat
from bot.core.lifecycle import FailureKind, TaskKind, TaskState


@dataclass(frozen=True, slots=True)
class NewTask:
    kind: TaskKind
    chat_id: int
    chat_type: str
    user_id: int
    lang: str
    prompt: str
    aspect_ratio: str
    message_thread_id: int | None = None
    request_message_id: int | None = None
    parent_task_id: int | None = None
    mode: str | None = None
    source_task_id: int | None = None
    source_index: int | None = None
    image_url: str | None = None
    image_file_id: str | None = None  # Telegram's id of that image (a user's own photo)
    inline_message_id: str | None = None  # made from inline mode: its result goes there
    # What makes the request one (a chat's message): a request delivered again finds the
    # task it made, and is not recorded, or charged, twice.
    request_key: str | None = None


@dataclass(frozen=True, slots=True)
class Caps:
    """An upstream account's limits, for all processes together."""

    running: int  # tasks it works on at once
    per_hour: int  # tasks created per rolling hour


@dataclass(frozen=True, slots=True)
class Charge:
    """What a new task costs and the limits it must fit in, at the moment `now`."""

    cost: int
    daily_limit: int
    user_cap: int | None
    now: float


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: TaskKind
    state: TaskState
    account: str  # the upstream account it was sent to; "" until its turn
    chat_id: int
    chat_type: str
    user_id: int
    lang: str
    message_thread_id: int | None
    request_message_id: int | None
    status_message_id: int | None
    prompt: str
    aspect_ratio: str
    parent_task_id: int | None
    upstream_task_id: str | None
    result_urls: tuple[str, ...]
    failure_kind: FailureKind | None
    failure_detail: str | None
    album_message_ids: tuple[int, ...]
    buttons_message_id: int | None
    callback_secret: str | None
    cost: int
    mode: str | None
    source_task_id: int | None
    source_index: int | None
    image_url: str | None
    image_file_id: str | None
    media_file_ids: tuple[str, ...]
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    delivered_at: float | None
    inline_message_id: str | None = None
    turn: int = 0  # its turn in the line (chats take turns over every replica's tasks)

    @property
    def is_group(self) -> bool:
        return is_group_chat(self.chat_type)
