"""The one way a new task comes in, from a command, a button or an animation: reserve its
cost and record it (one transaction), hand it to the engine, and return; or, when the chat
cannot pay for it, reply saying why (balance, cost, time to renewal) and create nothing."""

from __future__ import annotations

from telegram import Message

from bot.core.catalog import Lang
from bot.core.quota import Refusal
from bot.engine.billing import Billing
from bot.engine.engine import Engine
from bot.telegram import rendering
from storage.tasks import NewTask


class Intake:
    def __init__(self, *, billing: Billing, engine: Engine) -> None:
        self._billing = billing
        self._engine = engine

    async def submit(self, new: NewTask, answer_to: Message) -> bool:
        """True if the task was recorded and handed over; False if it was refused (and
        `answer_to` was answered with the reason)."""
        charge = await self._billing.charge(new.kind, new.chat_id, new.chat_type)
        result = await self._engine.submit(new, charge)
        if isinstance(result, Refusal):
            await answer_to.reply_text(
                rendering.refusal_text(Lang(new.lang), result, charge.now), do_quote=True
            )
            return False
        return True
