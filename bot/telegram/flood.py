"""Telegram flood control: the per-chat, per-group and overall limits, with results ahead
of best-effort calls (status messages, their edits, chat actions) in every queue; a 429's
retry_after waited out by its call and its chat, not by the whole bot. Plus what the bot
needs from it: errors counted for /metrics, and a sense of how backed up it is, so that
best-effort calls can be skipped altogether."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from telegram.error import NetworkError, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot.ops.metrics import Metrics
from bot.telegram.pace import BEST_EFFORT, INTERACTIVE, URGENT, PriorityPace
from bot.telegram.ptb_fixes import mend_call
from storage.telegram_pace import Bucket, TelegramPace

_log = logging.getLogger(__name__)

# A Bot API answer as PTB passes it around (PTB's own alias is private).
JSONDict = dict[str, Any]

# Replicas' shared paces (a chat's, all chats') run at this share of the limits.
SHARED_MARGIN = 0.9

# With replicas, a message reserves its moment in the shared paces only once that moment is
# near: one that can wait (a status edit) when it is this near, so it never books a slot
# ahead of a result another replica is about to send...
SHARED_SOON = 1.0
# ...and a result (any message that cannot wait) when it is this near: never far ahead, so a
# replica killed or frozen with messages booked wastes at most this much of the bot's budget
# (booked without bound, a kill every 10 s once left every replica waiting for moments booked
# by processes long dead: 1,000 albums took 278 s to settle instead of 87 s).
RESULT_SOON = 2.0

# More Bot API calls than this queued or in flight: skip what can be skipped.
BUSY_AT = 20


# Telegram counts messages per chat over sliding windows: "about one message a second" in a
# private chat ("short bursts" allowed), 20 a minute in a group, about 30 a second overall.
# A leaky bucket of capacity C and rate r lets at most C + r·T through in any window of
# T seconds, so each bucket is sized to stay under its window:
# - overall 3 + 27/s: at most 30 in any second;
# - a group 3 + 17/min: at most 20 in any minute (a burst of 3 is an album, its buttons
#   and a status message; the steady pace is 17 a minute);
# - a private chat 3 + 1/s: Telegram's one a second, with a burst of 3 (an album, its
#   buttons and the next status message leave together).
@dataclass(frozen=True, slots=True)
class FloodLimits:
    """Leaky buckets as (capacity, seconds to drain it): production's by default."""

    overall: tuple[float, float] = (3, 3 / 27)
    group: tuple[float, float] = (3, 3 / (17 / 60))
    private_chat: tuple[float, float] = (3, 3.0)


class Stopping(NetworkError):
    """A call that was still waiting for its turn when the bot stopped: never sent."""


class Ticket(Protocol):
    """Held by a call that may still be withdrawn while it waits for its turn: `gone` once
    the request has left (or is leaving) for Telegram, and cancelling it no longer helps."""

    gone: bool


class Fenced(Exception):
    """A call about a task this process no longer holds (another replica took it over while
    this one was frozen or cut off), or may lose any moment (its heartbeat ran out): never
    sent."""


_priority: ContextVar[int] = ContextVar("flood_priority", default=URGENT)
_ticket: ContextVar[Ticket | None] = ContextVar("flood_ticket", default=None)
_fence: ContextVar[Callable[[], Awaitable[bool]] | None] = ContextVar("flood_fence", default=None)


@contextmanager
def about_a_task(
    *, urgent: bool, still_mine: Callable[[], Awaitable[bool]], ticket: Ticket
) -> Iterator[None]:
    """The calls made inside are about one task: results and failures (`urgent`) go ahead
    of what can wait (status messages, chat actions) in every queue; each is sent only if
    `still_mine()` says so as it leaves, after its wait, else `Fenced`; `ticket.gone` is set
    as the first one leaves."""
    tokens = (
        _priority.set(URGENT if urgent else BEST_EFFORT),
        _fence.set(still_mine),
        _ticket.set(ticket),
    )
    try:
        yield
    finally:
        _ticket.reset(tokens[2])
        _fence.reset(tokens[1])
        _priority.reset(tokens[0])


# The calls Telegram's per-chat limits count: messages sent, and (to be safe) edited. They
# wait for their chat's bucket, then for the overall one.
MESSAGE_METHODS = frozenset(
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
# Every other call keeps to the overall limit only, never behind a chat's messages; these
# answer a person who is waiting (a button press) and go ahead of everything else.
_INTERACTIVE = frozenset(
    {
        "answerCallbackQuery",
        "answerInlineQuery",
        "answerPreCheckoutQuery",
        "getChatMember",
        "getChatAdministrators",
    }
)
# A long poll is not paced at all: it holds no place and must never wait behind albums.
_UNPACED = frozenset({"getUpdates"})
_MAX_CHAT_LIMITERS = 10_000


class FloodControl(BaseRateLimiter[int]):
    """PTB's rate limiter: every call the bot makes passes through `process_request`. The
    pacing is `PriorityPace`'s: messages per chat (groups and private chats) and every call
    overall; answers to button presses before results, results before best-effort calls.

    A 429 is waited out by its call, which then takes its turn again in every pace (booked
    anew in the replicas' shared ones), and by its chat. PTB's own AIORateLimiter holds
    every call of the process until the wait is over, and then lets them all go at once,
    past their paces: a burst that brings more 429s; and its retry is booked in no shared
    pace."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        max_retries: int,
        limits: FloodLimits | None = None,
        busy_at: int = BUSY_AT,
        shared: TelegramPace | None = None,
    ) -> None:
        self._limits = limits or FloodLimits()
        # Several processes on one database: each message also reserves its moment in the
        # paces they share (its chat's, and all chats'), so the limits hold for the bot.
        self._shared = shared
        self._pruned_at = 0.0
        # What can wait looks at the shared paces one call at a time in this process: many
        # waiting calls neither poll the database together nor all book one free moment.
        self._looking = asyncio.Lock()  # what can wait: one call looks at a time
        self._looking_first = asyncio.Lock()  # results: one call looks at a time
        # Moments being booked by calls that are no message (they do not wait for them).
        self._bookings: set[asyncio.Task[float]] = set()
        self._shared_failed_at = 0.0
        self._max_retries = max_retries
        self._overall = PriorityPace(*self._limits.overall)
        self._metrics = metrics
        self._busy_at = busy_at
        self._chats: OrderedDict[int, PriorityPace] = OrderedDict()
        self.pending = 0  # paced calls inside the limiter: waiting for their turn, or in flight
        self._pending_in: dict[int, int] = {}  # the same, of messages, per chat
        self._stopped: Stopping | None = None

    def _chat_pace(self, chat_id: int) -> PriorityPace:
        pace = self._chats.pop(chat_id, None)
        if pace is None:
            pace = PriorityPace(*(self._limits.group if chat_id < 0 else self._limits.private_chat))
            if self._stopped is not None:
                pace.close(self._stopped)
        self._chats[chat_id] = pace  # most recently used last; the oldest are dropped
        while len(self._chats) > _MAX_CHAT_LIMITERS:
            self._chats.popitem(last=False)
        return pace

    async def initialize(self) -> None:
        """Nothing to set up: the paces start empty."""

    async def shutdown(self) -> None:
        """Nothing to let go of: `stop_waiting` ends the calls still waiting."""

    def stop_waiting(self) -> None:
        """At shutdown: calls still waiting for their turn are not sent (they fail with a
        NetworkError), so that nothing holds the bot up; later calls fail the same way."""
        stopping = Stopping("The bot is stopping: not sent")
        self._overall.close(stopping)
        for pace in self._chats.values():
            pace.close(stopping)
        self._stopped = stopping

    @property
    def busy(self) -> bool:
        return self.pending >= self._busy_at

    def busy_for(self, chat_id: int) -> bool:
        """Too backed up for best-effort calls to this chat: messages already waiting for
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
        mend_call(endpoint, data)  # what PTB would send that the Bot API does not take
        if endpoint in _UNPACED:
            try:
                return await callback(*args, **kwargs)
            except TelegramError as error:
                self._count(error)
                raise
        held = _ticket.get()
        if held is not None:
            callback = _punching(held, callback)
        still_mine = _fence.get()
        if still_mine is not None:
            callback = _fenced(still_mine, callback)
        chat_id = data.get("chat_id")
        message_to = chat_id if isinstance(chat_id, int) and endpoint in MESSAGE_METHODS else None
        retries = self._max_retries if rate_limit_args is None else rate_limit_args
        self.pending += 1
        if message_to is not None:
            self._pending_in[message_to] = self._pending_in.get(message_to, 0) + 1
        try:
            priority = INTERACTIVE if endpoint in _INTERACTIVE else _priority.get()
            for attempt in range(retries + 1):
                await self._turn(message_to, priority)
                try:
                    return await callback(*args, **kwargs)
                except RetryAfter as error:
                    if attempt == retries:  # waited out, a 429 is no error; left, it is
                        self._count(error)
                        raise
                    wait = _seconds(error) + 0.1
                    _log.info("%s: Telegram asks to wait %.1f s: retrying then", endpoint, wait)
                    if message_to is not None:
                        await self._hold_chat(message_to, wait)
                    await asyncio.sleep(wait)
                except TelegramError as error:
                    self._count(error)
                    raise
            raise AssertionError("unreachable: the last attempt returns or raises")
        finally:
            self.pending -= 1
            if message_to is not None:
                left = self._pending_in[message_to] - 1
                if left:
                    self._pending_in[message_to] = left
                else:
                    del self._pending_in[message_to]

    async def _turn(self, message_to: int | None, priority: int) -> None:
        """Wait for the call's turn: a message to `message_to` in its chat's pace and in
        all chats', any other call in all chats'."""
        if message_to is not None:
            # The chat's turn, held while the call waits for the limit on all chats (and,
            # with replicas, for the moment the shared paces give it).
            chat = message_to
            await self._chat_pace(chat).acquire(
                priority, then=lambda: self._everyone_after(chat, priority)
            )
            return
        await self._overall.acquire(priority)
        if self._shared is not None:
            # Not a message, but a call all the same: it counts in the replicas' pace of
            # all chats too. It books its moment beside its way out and goes (Telegram's
            # limits are on messages; a status message's removal or the webhook's setting
            # must not wait behind every replica's albums), and the messages after it leave
            # that much later.
            self._book_in_passing()

    async def _hold_chat(self, chat_id: int, seconds: float) -> None:
        """Telegram answered a message to the chat with a 429: nothing more leaves for it,
        from this process or (with replicas) any other, for `seconds`."""
        self._chat_pace(chat_id).hold(seconds)
        if self._shared is None:
            return
        try:
            chat, _ = self._shared_buckets(chat_id)
            await self._shared.hold(chat_id, chat, until=time.time() + seconds)
        except Exception as error:
            _log.warning("shared Telegram pace unavailable (%s): the 429 held here only", error)

    def _shared_buckets(self, chat_id: int | None) -> tuple[Bucket, Bucket]:
        """The replicas' shared paces for a message to `chat_id`: (its chat's, all chats').
        They keep a tenth in hand: messages of several processes reach Telegram with more
        jitter than one process's."""
        limits = self._limits
        own = limits.group if chat_id is not None and chat_id < 0 else limits.private_chat
        every = limits.overall
        return (
            Bucket(own[0], own[0] / own[1] * SHARED_MARGIN),
            Bucket(every[0], every[0] / every[1] * SHARED_MARGIN),
        )

    def _count(self, error: TelegramError) -> None:
        """An error Telegram answered, counted for /metrics."""
        self._metrics.telegram_errors.labels(type(error).__name__).inc()

    async def _everyone_after(self, chat_id: int, priority: int) -> None:
        """With this process's turn in the chat: the limit on all chats in this process,
        then the replicas' shared paces (last, so the message leaves at the moment it
        reserved, not later behind this process's queue)."""
        await self._overall.acquire(priority)
        if self._shared is not None:
            await self._shared_turn(chat_id, priority)

    def _book_in_passing(self) -> None:
        """A call that is no message books its moment in the pace of all chats beside its
        way out, and does not wait for it."""
        booking = asyncio.create_task(self._book_shared(None, URGENT, in_passing=True))
        self._bookings.add(booking)
        booking.add_done_callback(self._bookings.discard)

    async def _shared_turn(self, chat_id: int, priority: int) -> None:
        """A message's moment in the shared paces: booked, then waited for. Whether the
        task is still this process's is asked before the wait, not once the moment has come:
        the database's answer can take a while when it is busy, and a message that left
        late would leave together with the next ones, past Telegram's limits (asked again as
        it leaves, the answer is still fresh)."""
        leave_at = await self._book_shared(chat_id, priority)
        still_mine = _fence.get()
        if still_mine is not None and not await still_mine():
            raise Fenced("not this process's to send: taken over, or its heartbeat ran out")
        if leave_at > time.time():
            await asyncio.sleep(leave_at - time.time())

    async def _book_shared(
        self, chat_id: int | None, priority: int, *, in_passing: bool = False
    ) -> float:
        """The moment the call may leave by the shared paces (now, if they cannot say)."""
        try:
            return await self._wait_for_shared(chat_id, priority, in_passing=in_passing)
        except Exception as error:
            # The database is away: this process's own pace still holds; a call is never
            # lost to the shared one.
            if time.time() - self._shared_failed_at > 60:
                self._shared_failed_at = time.time()
                _log.warning("shared Telegram pace unavailable (%s): pacing alone", error)
            return time.time()

    async def _wait_for_shared(
        self, chat_id: int | None, priority: int, *, in_passing: bool
    ) -> float:
        """Book the moment the replicas' shared paces give the call, and return it: a
        message's in its chat's pace and in all chats', any other call's in all chats'
        (`in_passing`: at once, however far ahead; the call does not wait for it)."""
        assert self._shared is not None
        chat, every = self._shared_buckets(chat_id)
        # A message books only a moment that comes soon: what can wait once it is within
        # SHARED_SOON, a result within RESULT_SOON, so results (of any replica) are booked
        # ahead of what can wait. One call of each kind of this process looks at a time, the
        # others waiting their turn here (not polling the database): it waits for a moment
        # that is near, or, if its moment is far (its chat is busy, or the bot), lets the
        # next one look and comes back when it is near. A pace's next free moment never
        # comes earlier.
        if in_passing:
            now = time.time()
            leave_at = await self._shared.reserve(chat_id, chat, every, now=now)
        else:
            can_wait = priority >= BEST_EFFORT
            soon = SHARED_SOON if can_wait else RESULT_SOON
            looking = self._looking if can_wait else self._looking_first
            while True:
                async with looking:
                    free = await self._shared.next_free_each(chat_id, chat, every, now=time.time())
                    # Its chat's moment far off: that is the chat's own business, and the
                    # call lets the next one look at once. The bot's moment near: it waits
                    # for it here, the others behind it not polling the database.
                    near = free[1] - soon - time.time()
                    if free[0] <= time.time() + soon and 0 < near <= SHARED_SOON:
                        await asyncio.sleep(near)
                        free = await self._shared.next_free_each(
                            chat_id, chat, every, now=time.time()
                        )
                    now = time.time()
                    if max(free) <= now + soon:
                        leave_at = await self._shared.reserve(chat_id, chat, every, now=now)
                        break
                await asyncio.sleep(max(0.0, max(free) - soon - time.time()))
        if now - self._pruned_at > 60:
            self._pruned_at = now
            await self._shared.forget(before=now - 60)
        return leave_at


def _seconds(error: RetryAfter) -> float:
    """A 429's retry_after in seconds. PTB 22 warns on reading it as an int (it will be a
    timedelta in PTB 23, and is one with PTB_TIMEDELTA set): both are taken, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wait = error.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def _fenced(
    still_mine: Callable[[], Awaitable[bool]],
    request: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
) -> Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]:
    """`request`, sent only if the task is still this process's as it leaves."""

    async def fenced(*args: Any, **kwargs: Any) -> bool | JSONDict | list[JSONDict]:
        if not await still_mine():
            raise Fenced("not this process's to send: taken over, or its heartbeat ran out")
        return await request(*args, **kwargs)

    return fenced


def _punching(
    held: Ticket, request: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]
) -> Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]:
    """`request`, marking the ticket as gone the moment it starts (after the waiting)."""

    async def punched(*args: Any, **kwargs: Any) -> bool | JSONDict | list[JSONDict]:
        held.gone = True
        return await request(*args, **kwargs)

    return punched
