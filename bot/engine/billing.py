"""Who pays for a task, how much, and within which limits: settings, chat settings and the
ledger put together for the handlers."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.constants import is_group_chat
from bot.core.lifecycle import TaskKind
from bot.core.quota import Balance, Costs, utc_day
from bot.core.task import Charge
from bot.settings import Settings
from storage.chats import ChatRepository
from storage.ledger import LedgerRepository


class Billing:
    def __init__(
        self,
        *,
        settings: Settings,
        chats: ChatRepository,
        ledger: LedgerRepository,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._chats = chats
        self._ledger = ledger
        self.clock = clock
        self.costs = Costs(
            text_to_image=settings.cost_text_to_image,
            image_to_video=settings.cost_image_to_video,
            text_to_video=settings.cost_text_to_video,
            upscale=settings.cost_upscale,
        )

    async def limits(self, chat_id: int, chat_type: str) -> tuple[int, int | None]:
        """The chat's daily allowance, and the per-member cap (None: no cap)."""
        chat = await self._chats.get(chat_id)
        daily = (
            self._settings.chat_daily_credits if chat.daily_credits is None else chat.daily_credits
        )
        cap = None
        if is_group_chat(chat_type):
            configured = chat.user_daily_cap
            if configured is None:
                configured = self._settings.group_user_daily_credits
            cap = configured or None
        return daily, cap

    async def charge(self, kind: TaskKind, chat_id: int, chat_type: str) -> Charge:
        daily, cap = await self.limits(chat_id, chat_type)
        return Charge(cost=self.costs.of(kind), daily_limit=daily, user_cap=cap, now=self.clock())

    async def balance(self, chat_id: int, chat_type: str, user_id: int | None) -> Balance:
        daily, cap = await self.limits(chat_id, chat_type)
        return await self._ledger.balance(
            chat_id=chat_id,
            day=utc_day(self.clock()),
            daily_limit=daily,
            user_id=user_id,
            user_cap=cap,
        )
