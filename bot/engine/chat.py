"""The engine's port to the chat: what it tells a task's chat, in its own terms.

The engine decides *when* a chat hears of a task (posted, waiting at place N, running,
delivered, failed) and records each step in the database; a `ChatPort` decides *how* that
looks and sends it. `bot.telegram.task_chat.TelegramChat` is the real one; an engine test
holds any object with these methods (no Telegram library, no HTTP).

Every call carries a `Sending`: whether it is urgent (results, failures) or may wait
(status messages), and the claim it is made under. A port sends a call only while the
claim still holds as the call leaves (after any wait for Telegram's limits), else raises
`ClaimLost` (storage's, whose writes are fenced the same way): a replica whose task another
one took over sends nothing more about it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.core.task import Task
from bot.providers import ProviderError, UpstreamState
from storage.claims import ClaimLost

__all__ = [
    "Activity",
    "Alerts",
    "ChatClosed",
    "ChatError",
    "ChatMoved",
    "ChatPort",
    "ClaimLost",
    "InLine",
    "Offers",
    "Outage",
    "Posted",
    "Refused",
    "Sending",
    "StatusView",
    "Unreachable",
    "Working",
]

# --- what can go wrong, as the engine needs to tell it apart ---------------------------


class ChatError(Exception):
    """A call the chat did not take."""


class ChatClosed(ChatError):
    """The chat is closed to the bot (the user blocked it, it left the group)."""


class ChatMoved(ChatError):
    """The group became a supergroup: its messages go to `new_chat_id` now."""

    def __init__(self, new_chat_id: int) -> None:
        super().__init__(f"the chat moved to {new_chat_id}")
        self.new_chat_id = new_chat_id


class Refused(ChatError):
    """The chat refused this message (a message gone, a request it will never take)."""


class Unreachable(ChatError):
    """The chat could not be reached just now (network, flood wait): worth another try."""


# --- what a call carries ------------------------------------------------------------------


@dataclass(eq=False)
class Sending:
    """How one call about a task goes out. `holds()` is asked as the call leaves; `gone` is
    set by the port the moment it has left, from when on withdrawing it saves nothing."""

    holds: Callable[[], Awaitable[bool]]
    urgent: bool = True
    gone: bool = False

    def later(self) -> Sending:
        """The same claim, for a call that may wait behind urgent ones."""
        return Sending(self.holds, urgent=False)


# --- what the chat is shown ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InLine:
    """Waiting in the line at `place` (1: next), for about `minutes` (None: not known)."""

    place: int
    minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    """Every account that could do it is out: it waits about `minutes` for one."""

    minutes: int


@dataclass(frozen=True, slots=True)
class Working:
    """Taken by the upstream for `seconds`: being made (`seen` is WORKING), or not known to
    be yet (None). Two views that read the same are equal, so no edit repeats a message
    (Telegram refuses an edit that changes nothing)."""

    seen: UpstreamState | None
    seconds: int


StatusView = InLine | Outage | Working


class Activity(StrEnum):
    """What the chat's header says the bot is doing."""

    MAKING_PHOTO = "photo"
    MAKING_VIDEO = "video"


@dataclass(frozen=True, slots=True)
class Offers:
    """The follow-ups the task's account offers under its result."""

    animate: bool
    upscale: bool


@dataclass(frozen=True, slots=True)
class Posted:
    """A result in the chat, per result index: its message id (0: not delivered as media)
    and the Telegram file id of a photo or video ("" for a document or a link);
    `buttons_message_id` when the result carries its buttons itself (a single video)."""

    message_ids: list[int]
    file_ids: list[str]
    buttons_message_id: int | None = None

    @property
    def first_message_id(self) -> int | None:
        return next((m for m in self.message_ids if m), None)


# --- the ports ----------------------------------------------------------------------------


class ChatPort(Protocol):
    def busy(self, chat_id: int) -> bool:
        """True while the chat's calls are backed up: a status edit can be skipped."""
        ...

    async def post_status(self, task: Task, view: StatusView, sending: Sending) -> int:
        """Post the task's status message; its message id."""
        ...

    async def edit_status(
        self, task: Task, message_id: int, view: StatusView, sending: Sending
    ) -> None:
        """Show `view` in the status message (already showing it is not an error)."""
        ...

    async def remove_status(self, task: Task, message_id: int, sending: Sending) -> None: ...

    async def show_activity(self, task: Task, activity: Activity, sending: Sending) -> None: ...

    async def send_result(self, task: Task, offers: Offers, sending: Sending) -> Posted:
        """The task's result, in its chat and topic, answering its request."""
        ...

    async def send_buttons(
        self, task: Task, reply_to: int, offers: Offers, sending: Sending
    ) -> int:
        """The buttons under an album (which cannot carry them); their message id."""
        ...

    async def send_inline_result(self, task: Task, sending: Sending) -> None:
        """The result into the task's inline message."""
        ...

    async def tell_failure(self, task: Task, sending: Sending) -> None:
        """The failure notice: in place of the status message if it has one (or into the
        inline message), else a new message answering the request."""
        ...


class Alerts(Protocol):
    """What operators hear of the accounts."""

    async def account_down(self, account: str, error: ProviderError) -> None: ...

    async def account_back(self, account: str) -> None: ...
