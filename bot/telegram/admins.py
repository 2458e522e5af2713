"""Who administers each group, known without a Bot API call per button press.

A group's administrators are read with one `getChatAdministrators` and kept for `ttl`
seconds; a `chat_member` or `my_chat_member` update that promotes or demotes someone makes
the next question read them afresh, on every replica: the replica the update reached tells
the others through the database (`ChatRepository.admins_changed`). Presses that arrive
together while a read is under way share it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import Bot, ChatMember
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

_log = logging.getLogger(__name__)

ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
DEFAULT_TTL = 300.0
_MAX_CHATS = 10_000


@dataclass(frozen=True, slots=True)
class _Known:
    admin_ids: frozenset[int]
    read_at: float


class ChatAdmins:
    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        tell_everyone: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self._ttl = ttl
        # Tells every process (this one too) to `forget` a chat's administrators.
        self._tell_everyone = tell_everyone
        self._clock = clock
        self._known: OrderedDict[int, _Known] = OrderedDict()
        self._reading: dict[int, asyncio.Task[frozenset[int] | None]] = {}
        self._stale: set[asyncio.Task[frozenset[int] | None]] = set()  # overtaken by a change
        self.reads = 0  # getChatAdministrators calls made

    async def is_admin(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        """True if `user_id` owns or administers the group `chat_id` (False when it cannot
        be told: Telegram did not answer)."""
        admin_ids = await self.admin_ids(bot, chat_id)
        return admin_ids is not None and user_id in admin_ids

    async def admin_ids(self, bot: Bot, chat_id: int) -> frozenset[int] | None:
        known = self._known.get(chat_id)
        if known is not None and self._clock() - known.read_at < self._ttl:
            return known.admin_ids
        reading = self._reading.get(chat_id)
        if reading is None:
            reading = asyncio.create_task(self._read(bot, chat_id))
            self._reading[chat_id] = reading
            reading.add_done_callback(lambda done: self._read_done(chat_id, done))
        return await asyncio.shield(reading)

    def _read_done(self, chat_id: int, done: asyncio.Task[frozenset[int] | None]) -> None:
        self._stale.discard(done)
        if self._reading.get(chat_id) is done:
            del self._reading[chat_id]

    async def changed(self, chat_id: int, old: ChatMember, new: ChatMember) -> None:
        """A member's status in `chat_id` changed (a `chat_member` or `my_chat_member`
        update): forget the chat's administrators if it touched them, on every process."""
        if old.status in ADMIN_STATUSES or new.status in ADMIN_STATUSES:
            self.forget(chat_id)
            if self._tell_everyone is not None:
                await self._tell_everyone(chat_id)

    def forget(self, chat_id: int) -> None:
        self._known.pop(chat_id, None)
        # A read already under way may have been answered before the change: it is not kept.
        reading = self._reading.pop(chat_id, None)
        if reading is not None:
            self._stale.add(reading)

    async def _read(self, bot: Bot, chat_id: int) -> frozenset[int] | None:
        read_at = self._clock()
        self.reads += 1
        try:
            members = await bot.get_chat_administrators(chat_id)
        except TelegramError as error:
            _log.info("could not read the administrators of chat %d: %s", chat_id, error)
            return None
        admin_ids = frozenset(m.user.id for m in members if m.status in ADMIN_STATUSES)
        if asyncio.current_task() in self._stale:
            return admin_ids  # good enough for the presses that waited, not to be kept
        self._known[chat_id] = _Known(admin_ids, read_at)
        self._known.move_to_end(chat_id)
        while len(self._known) > _MAX_CHATS:
            self._known.popitem(last=False)
        return admin_ids
