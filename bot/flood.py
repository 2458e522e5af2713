"""Telegram flood control: the per-chat, per-group and overall limits, with results ahead
of best-effort calls (status messages, their edits, chat actions) in every queue; PTB's
AIORateLimiter waits out a 429's retry_after and retries. Plus what the bot needs from it:
errors counted for /metrics, and a sense of how backed up it is, so that best-effort calls
can be skipped altogether."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter

from bot.metrics import Metrics
from bot.pace import BEST_EFFORT, URGENT, PriorityPace

# More Bot API calls than this queued or in flight: skip what can be skipped.
BUSY_AT = 20


# Telegram counts messages per chat over sliding windows (about 30 a second overall, 20 a
# minute per group, about one a second per chat with short bursts). A leaky bucket of
# capacity C and rate r lets C + r·T through in any window of T seconds, so each bucket is
# sized to stay under its window: overall 3 + 27/s ≤ 30 in 1 s; a group 2 + 0.3/s ≤ 20 in
# 60 s; a private chat 1 + 2/3/s ≤ 3 in 3 s.
@dataclass(frozen=True, slots=True)
class FloodLimits:
    """Leaky buckets as (capacity, seconds to drain it): production's by default."""

    overall: tuple[float, float] = (3, 3 / 27)
    group: tuple[float, float] = (2, 2 / 0.3)
    private_chat: tuple[float, float] = (1, 1.5)


class Ticket:
    """Held by a call that may still be withdrawn while it waits for its turn: `gone` once
    the request has left (or is leaving) for Telegram, and cancelling it no longer helps."""

    def __init__(self) -> None:
        self.gone = False


_ticket: ContextVar[Ticket | None] = ContextVar("flood_ticket", default=None)


_priority: ContextVar[int] = ContextVar("flood_priority", default=URGENT)


def best_effort() -> None:
    """The calls the current asyncio task makes from here on can wait: results go first."""
    _priority.set(BEST_EFFORT)


def ticket() -> Ticket:
    """A ticket for the calls the current asyncio task makes from here on."""
    held = Ticket()
    _ticket.set(held)
    return held


# The calls those limits count: messages sent or edited.
_MESSAGES = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendMediaGroup",
        "sendVideo",
        "sendDocument",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)
_MAX_CHAT_LIMITERS = 10_000


class FloodControl(AIORateLimiter):
    """PTB's AIORateLimiter for what it does well (waiting out a 429's retry_after and
    retrying), with the pacing itself done here by `PriorityPace`: per chat (groups and
    private chats) and overall, results before best-effort calls."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        max_retries: int,
        limits: FloodLimits | None = None,
        busy_at: int = BUSY_AT,
    ) -> None:
        self._limits = limits or FloodLimits()
        # 0: PTB's own (first come, first served) limiters are off; ours replace them.
        super().__init__(overall_max_rate=0, group_max_rate=0, max_retries=max_retries)
        self._overall = PriorityPace(*self._limits.overall)
        self._metrics = metrics
        self._busy_at = busy_at
        self._chats: OrderedDict[int, PriorityPace] = OrderedDict()
        self.pending = 0  # calls inside the limiter: waiting for their turn, or in flight
        self._pending_in: dict[int, int] = {}  # the same, per chat

    def _chat_pace(self, chat_id: int) -> PriorityPace:
        pace = self._chats.pop(chat_id, None)
        if pace is None:
            pace = PriorityPace(*(self._limits.group if chat_id < 0 else self._limits.private_chat))
        self._chats[chat_id] = pace  # most recently used last; the oldest are dropped
        while len(self._chats) > _MAX_CHAT_LIMITERS:
            self._chats.popitem(last=False)
        return pace

    @property
    def busy(self) -> bool:
        return self.pending >= self._busy_at

    def busy_for(self, chat_id: int) -> bool:
        """Too backed up for best-effort calls to this chat: anything already waiting for
        it (its own pace is slow) or the bot as a whole."""
        return self.busy or self._pending_in.get(chat_id, 0) > 0

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        held = _ticket.get()
        if held is not None:
            callback = _punching(held, callback)
        self.pending += 1
        chat_id = data.get("chat_id")
        if not isinstance(chat_id, int):
            chat_id = None  # a call to no chat (getMe, getUpdates) or by @username
        else:
            self._pending_in[chat_id] = self._pending_in.get(chat_id, 0) + 1
        try:
            if chat_id is not None:
                # A group's limit counts every call (as PTB counts it); a private chat's,
                # the messages. Then the limit on all chats together.
                priority = _priority.get()
                if chat_id < 0 or endpoint in _MESSAGES:
                    await self._chat_pace(chat_id).acquire(priority)
                await self._overall.acquire(priority)
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        except TelegramError as error:
            self._metrics.telegram_errors.labels(type(error).__name__).inc()
            raise
        finally:
            self.pending -= 1
            if chat_id is not None:
                left = self._pending_in[chat_id] - 1
                if left:
                    self._pending_in[chat_id] = left
                else:
                    del self._pending_in[chat_id]


def _punching(
    held: Ticket, request: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]
) -> Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]:
    """`request`, marking the ticket as gone the moment it starts (after the waiting)."""

    async def punched(*args: Any, **kwargs: Any) -> bool | JSONDict | list[JSONDict]:
        held.gone = True
        return await request(*args, **kwargs)

    return punched
