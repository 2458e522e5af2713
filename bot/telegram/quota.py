"""/quota: a chat's credits (today's allowance, granted, purchased, a member's share in a
group) and what things cost."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Update
from telegram.ext import ContextTypes

from bot.core.constants import is_group_chat
from bot.core.quota import Balance, Costs, next_renewal
from bot.engine.billing import Billing
from bot.telegram.catalog import Lang, Markup, text
from bot.telegram.replies import Handlers, command, duration_text, lang_of
from storage.payments import PaymentRepository


def quota_text(
    lang: Lang,
    balance: Balance,
    costs: Costs,
    now: float,
    buyers: Sequence[tuple[str, int]] = (),
) -> str:
    """/quota: the day's allowance, granted and purchased credits apart, and in a group
    who bought the purchased ones."""
    user_line = ""
    if balance.user_cap is not None:
        user_line = text(
            lang, "quota.user_line", user_left=balance.user_left, user_cap=balance.user_cap
        )
    purchased_line = ""
    if balance.purchased or buyers:
        purchased_line = text(lang, "quota.purchased_line", purchased=balance.purchased)
        if buyers:
            who = ", ".join(f"{name} ({credits})" for name, credits in buyers)
            purchased_line += text(lang, "quota.buyers_line", buyers=who)
    return text(
        lang,
        "quota.summary",
        daily_left=balance.daily_left,
        daily_limit=balance.daily_limit,
        granted=balance.granted,
        purchased_line=Markup(purchased_line),
        user_line=Markup(user_line),
        cost_image=costs.text_to_image,
        renews_in=duration_text(lang, next_renewal(now) - now),
    )


class Quota:
    def __init__(self, *, billing: Billing, payments: PaymentRepository) -> None:
        self._billing = billing
        self._payments = payments

    def handlers(self) -> Handlers:
        return [command("quota", self.quota)]

    async def quota(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        balance = await self._billing.balance(message.chat_id, message.chat.type, user.id)
        group = is_group_chat(message.chat.type)
        buyers = await self._payments.buyers(message.chat_id) if group else []
        text = quota_text(
            lang_of(update), balance, self._billing.costs, self._billing.clock(), buyers
        )
        await message.reply_text(text)
