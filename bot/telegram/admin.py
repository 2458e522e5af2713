"""Operator commands (ADMIN_USER_IDS only): grant credits, set a chat's daily quota, read
the figures and the upstream accounts' balances. To anyone else they do not exist."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from telegram import Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import CommandHandler, ContextTypes, filters

from bot.core.breaker import BreakerState
from bot.core.quota import utc_day
from bot.engine.billing import Billing
from bot.engine.pool import Account, Pool
from bot.ops.charts import daily_chart
from bot.providers import ProviderError
from bot.telegram import catalog
from bot.telegram.catalog import Lang, language_for, text
from bot.telegram.replies import Handlers
from storage.chats import ChatRepository
from storage.ledger import LedgerRepository
from storage.payments import PaymentRepository, StarsDay
from storage.stats import AccountStats, ChatStats, DayStats, StatsRepository

MAX_CREDITS = 1_000_000
STATS_DAYS = 7
CHART_DAYS = 30


class AdminCommands:
    def __init__(
        self,
        *,
        operator_ids: frozenset[int],
        billing: Billing,
        ledger: LedgerRepository,
        chats: ChatRepository,
        stats: StatsRepository,
        payments: PaymentRepository,
        pool: Pool,
    ) -> None:
        self._operators = operator_ids
        self._payments = payments
        self._billing = billing
        self._ledger = ledger
        self._chats = chats
        self._stats = stats
        self._pool = pool

    def handlers(self) -> Handlers:
        # Only operators' new messages reach these handlers; others' fall through unanswered.
        only_operators = filters.User(user_id=self._operators) & filters.UpdateType.MESSAGE
        return [
            CommandHandler(name, callback, filters=only_operators)
            for name, callback in (
                ("grant", self.grant),
                ("setquota", self.set_quota),
                ("stats", self.stats),
                ("balance", self.balance),
                ("refund", self.refund),
            )
        ]

    async def grant(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, lang, operator = _message(update), _lang(update), _user_id(update)
        target = _chat_and_amount(message, context.args, minimum=1)
        if target is None:
            await _reply(message, catalog.text(lang, "admin.usage_grant"))
            return
        chat_id, amount = target
        now = self._billing.clock()
        await self._ledger.grant(
            chat_id=chat_id, operator_id=operator, amount=amount, day=utc_day(now), now=now
        )
        balance = await self._billing.balance(chat_id, "private", None)
        await _reply(
            message,
            catalog.text(
                lang, "admin.granted", amount=amount, chat=chat_id, granted=balance.granted
            ),
        )

    async def set_quota(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, lang = _message(update), _lang(update)
        target = _chat_and_amount(message, context.args, minimum=0)
        if target is None:
            await _reply(message, catalog.text(lang, "admin.usage_setquota"))
            return
        chat_id, daily = target
        await self._chats.set_daily_credits(chat_id, daily)
        await _reply(message, catalog.text(lang, "admin.quota_set", chat=chat_id, daily=daily))

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The last week as a table, the last 30 days as a chart."""
        message, lang = _message(update), _lang(update)
        today = datetime.now(UTC).date()
        since = today - timedelta(days=STATS_DAYS - 1)
        week = await self._stats.per_day(since.isoformat())
        top = await self._stats.top_chats(since.isoformat())
        accounts = await self._stats.per_account(since.isoformat())
        stars = await self._payments.stars_per_day(since.isoformat())
        await _reply(message, stats_text(lang, STATS_DAYS, week, top, accounts, stars))
        month = await self._stats.per_day((today - timedelta(days=CHART_DAYS - 1)).isoformat())
        chart = await asyncio.to_thread(daily_chart, month, last_day=today, span=CHART_DAYS)
        await message.reply_photo(chart)

    async def refund(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/refund <charge id>`: the Stars back to the buyer (Telegram first), then the
        payment's credits taken back from the chat as far as they are unspent; once."""
        message, lang = _message(update), _lang(update)
        if not context.args or len(context.args) != 1:
            await _reply(message, catalog.text(lang, "admin.usage_refund"))
            return
        charge_id = context.args[0]
        payment = await self._payments.get(charge_id)
        if payment is None:
            await _reply(message, catalog.text(lang, "admin.refund_unknown"))
            return
        if payment.refunded_at is not None:
            taken = payment.refunded_credits or 0
            await _reply(message, catalog.text(lang, "admin.refund_already", taken=taken))
            return
        try:
            await context.bot.refund_star_payment(payment.user_id, charge_id)
        except BadRequest as error:
            # Already refunded: by a /refund that stopped before taking the credits back.
            if "charge_already_refunded" not in error.message.lower():
                await _reply(
                    message, catalog.text(lang, "admin.refund_failed", reason=error.message)
                )
                return
        refunded = await self._payments.take_back(charge_id, now=self._billing.clock())
        assert refunded is not None
        if not refunded.first:  # another /refund got there first
            await _reply(message, catalog.text(lang, "admin.refund_already", taken=refunded.taken))
            return
        await _reply(
            message,
            catalog.text(
                lang,
                "admin.refunded",
                stars=payment.stars,
                buyer=payment.buyer_name,
                taken=refunded.taken,
                credits=payment.credits,
                chat=payment.chat_id,
            ),
        )
        notice = catalog.text(
            catalog.Lang(payment.lang),
            "shop.refunded_notice",
            stars=payment.stars,
            buyer=payment.buyer_name,
            taken=refunded.taken,
            credits=payment.credits,
        )
        with contextlib.suppress(TelegramError):  # the chat is gone: the refund stands
            await context.bot.send_message(
                payment.chat_id, notice, message_thread_id=payment.message_thread_id
            )

    async def balance(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Each account's balance and whether it is in rotation, read side by side."""
        message, lang = _message(update), _lang(update)
        lines = await asyncio.gather(*(self._account_line(lang, a) for a in self._pool.accounts))
        await _reply(
            message, catalog.text(lang, "admin.balance", accounts=catalog.Markup("\n".join(lines)))
        )

    async def _account_line(self, lang: Lang, account: Account) -> str:
        try:
            credits = await account.provider.get_account_credits()
            balance = catalog.text(lang, "admin.balance_credits", credits=f"{credits:g}")
        except ProviderError as error:
            balance = catalog.text(lang, "admin.balance_failed", reason=error.message)
        now = self._pool.now()
        state = account.breaker.state(now)
        reason = account.breaker.reason or ""
        if state is BreakerState.CLOSED:
            shown = catalog.text(lang, "admin.account_closed", running=len(account.running))
        elif state is BreakerState.OPEN:
            left = round((account.breaker.reopens_at() or now) - now)
            shown = catalog.text(lang, "admin.account_open", seconds=left, reason=reason)
        else:
            shown = catalog.text(lang, "admin.account_half_open", reason=reason)
        return catalog.text(
            lang,
            "admin.balance_line",
            mark="🟢" if state is BreakerState.CLOSED else "🔴",
            account=account.name,
            provider=account.config.provider.value,
            balance=catalog.Markup(balance),
            state=catalog.Markup(shown),
        )


def _chat_and_amount(
    message: Message, args: list[str] | None, *, minimum: int
) -> tuple[int, int] | None:
    """`<chat id|here> <number>` from the command's arguments, or None if malformed."""
    if not args or len(args) != 2:
        return None
    where, number = args
    try:
        chat_id = message.chat_id if where.lower() == "here" else int(where)
        amount = int(number)
    except ValueError:
        return None
    if not minimum <= amount <= MAX_CREDITS:
        return None
    return chat_id, amount


def _message(update: Update) -> Message:
    assert update.effective_message is not None
    return update.effective_message


def _user_id(update: Update) -> int:
    assert update.effective_user is not None
    return update.effective_user.id


def _lang(update: Update) -> Lang:
    user = update.effective_user
    return language_for(user.language_code if user else None)


async def _reply(message: Message, text: str) -> None:
    await message.reply_text(text)


def stats_text(
    lang: Lang,
    days: int,
    daily: list[DayStats],
    top: list[ChatStats],
    accounts: list[AccountStats],
    stars: Sequence[StarsDay] = (),
) -> str:
    tasks_by_day = {d.day: d for d in daily}
    stars_by_day = {d.day: d for d in stars}
    if tasks_by_day or stars_by_day:
        lines = ["day         tasks  failed  credits  stars"]
        for day in sorted(tasks_by_day.keys() | stars_by_day.keys()):
            d, paid = tasks_by_day.get(day), stars_by_day.get(day)
            tasks, failed, credits = (d.tasks, d.failed, d.credits) if d else (0, 0, 0)
            received = paid.stars if paid else 0
            refunded = f" (-{paid.refunded})" if paid and paid.refunded else ""
            lines.append(f"{day}  {tasks:>5}  {failed:>6}  {credits:>7}  {received:>5}{refunded}")
        table = "\n".join(lines)
    else:
        table = text(lang, "admin.stats_empty")
    if top:
        top_table = "\n".join(f"{c.chat_id:>15}  {c.tasks:>5}  {c.credits:>7}" for c in top)
    else:
        top_table = text(lang, "admin.stats_empty")
    if accounts:
        width = max(len("account"), *(len(a.account) for a in accounts))
        rows = [f"{'account':<{width}}  tasks  failed"]
        rows += [f"{a.account:<{width}}  {a.tasks:>5}  {a.failed:>6}" for a in accounts]
        per_account = "\n".join(rows)
    else:
        per_account = text(lang, "admin.stats_empty")
    return text(lang, "admin.stats", days=days, table=table, top=top_table, accounts=per_account)
