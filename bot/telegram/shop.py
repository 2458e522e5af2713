"""Selling credits for Telegram Stars: /buy, the invoice, the pre-checkout answer, the
payment, the receipt; /paysupport and /terms, as Telegram asks of bots that take payments.

A payment is recorded, and its credits added, in one transaction keyed by Telegram's charge
id before anything else happens (`storage/payments.py`): a payment Telegram delivers twice
adds its credits once. One the bot never saw (it died after Telegram handed it over, before
it was recorded) is found at the next start in the bot's Star transactions, whose payloads
name the pack and the chat; a receipt that did not go out is sent then too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    StarTransaction,
    TransactionPartnerUser,
    Update,
    User,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from bot.core import callback_data
from bot.core.callback_data import Buy
from bot.core.constants import is_group_chat
from bot.core.quota import Balance
from bot.core.shop import BadPayload, Order, Pack, PayloadProblem, image_sets, read, sign
from bot.engine.billing import Billing
from bot.telegram import catalog
from bot.telegram.alerts import OperatorAlerts
from bot.telegram.catalog import Lang, Markup, language_for, text
from bot.telegram.replies import Handlers, command, lang_of, reply, shorten, text_after_command
from storage.payments import NewPayment, Payment, PaymentRepository

_log = logging.getLogger(__name__)

STARS = "XTR"
# Why a pre-checkout is refused, as the catalog says it to the buyer.
_PAYLOAD_PROBLEMS: dict[PayloadProblem, str] = {
    "forged": "checkout.forged",
    "stale": "checkout.stale",
}
MAX_DESCRIPTION_CHARS = 255
PAGE = 100  # Star transactions per getStarTransactions call (Telegram's most)
MAX_QUESTION_CHARS = 1000


class Shop:
    def __init__(
        self,
        *,
        packs: tuple[Pack, ...],
        payload_key: bytes,
        payments: PaymentRepository,
        billing: Billing,
        alerts: OperatorAlerts,
        paysupport_text: str | None = None,
        terms_text: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.packs = packs
        self._key = payload_key
        self._payments = payments
        self._billing = billing
        self._alerts = alerts
        self._paysupport_text = paysupport_text
        self._terms_text = terms_text
        self._clock = clock

    @property
    def open(self) -> bool:
        return bool(self.packs)

    # --- /buy and its buttons -----------------------------------------------------------------

    def handlers(self) -> Handlers:
        return [
            command("buy", self.buy),
            command("paysupport", self.paysupport),
            command("terms", self.terms),
            PreCheckoutQueryHandler(self.pre_checkout),
            MessageHandler(filters.SUCCESSFUL_PAYMENT, self.paid),
            CallbackQueryHandler(self.press, pattern=callback_data.of(Buy)),
        ]

    async def buy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        lang = lang_of(update)
        if not self.open:
            await reply(message, catalog.text(lang, "shop.closed"))
            return
        text, keyboard = shop_menu(
            lang,
            self.packs,
            self._billing.costs.text_to_image,
            group=is_group_chat(message.chat.type),
        )
        await message.reply_text(text, reply_markup=keyboard)

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A pack chosen: an invoice for it, in this chat, made out to whoever pressed."""
        query = update.callback_query
        if query is None:
            return
        lang = lang_of(update)
        action = callback_data.decode(query.data)
        message = query.message
        pack = Pack(action.credits, action.stars) if isinstance(action, Buy) else None
        if pack not in self.packs or not isinstance(message, Message):
            await query.answer(catalog.text(lang, "shop.pack_gone"), show_alert=True)
            return
        assert pack is not None
        await query.answer()
        thread_id = message.message_thread_id if message.is_topic_message else None
        order = Order(pack, message.chat.id, query.from_user.id, thread_id, int(self._clock()))
        sets = catalog.plain(
            lang, "count.image_sets", n=image_sets(pack.credits, self._billing.costs.text_to_image)
        )
        if is_group_chat(message.chat.type):
            description = catalog.plain(
                lang,
                "shop.invoice_for_group",
                credits=pack.credits,
                sets=sets,
                chat=message.chat.title or "",
            )
        else:
            description = catalog.plain(
                lang, "shop.invoice_for_you", credits=pack.credits, sets=sets
            )
        title = catalog.plain(lang, "shop.invoice_title", credits=pack.credits)
        await context.bot.send_invoice(
            message.chat.id,
            title=title,
            description=shorten(description, MAX_DESCRIPTION_CHARS),
            payload=sign(order, self._key),
            currency=STARS,
            prices=[LabeledPrice(title, pack.stars)],
            message_thread_id=thread_id,
        )

    # --- the payment --------------------------------------------------------------------------

    async def pre_checkout(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Yes only for a payload this bot signed, not stale, made out to this payer, for a
        pack still on sale at that price. Answered at once: no storage, no network."""
        query = update.pre_checkout_query
        if query is None:
            return
        problem = self._problem(
            query.invoice_payload, query.currency, query.total_amount, query.from_user.id
        )
        if problem is None:
            await query.answer(ok=True)
            return
        _log.info("pre-checkout %s refused: %s", query.id, problem)
        lang = language_for(query.from_user.language_code)
        await query.answer(ok=False, error_message=catalog.plain(lang, problem))

    def _problem(self, payload: str, currency: str, amount: int, payer: int) -> str | None:
        order = read(payload, self._key, now=self._clock())
        if isinstance(order, BadPayload):
            return _PAYLOAD_PROBLEMS[order.problem]
        if order.buyer_id != payer:
            return "checkout.not_yours"
        if order.pack not in self.packs or currency != STARS or amount != order.pack.stars:
            return "checkout.pack_gone"
        return None

    async def paid(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`successful_payment`: record it and add its credits (once), then the receipt."""
        message = update.effective_message
        user = update.effective_user
        if message is None or message.successful_payment is None or user is None:
            return
        done = message.successful_payment
        await self._settle(
            context.bot,
            done.telegram_payment_charge_id,
            done.invoice_payload,
            done.total_amount,
            user,
        )

    async def _settle(
        self,
        bot: Bot,
        charge_id: str,
        payload: str,
        stars: int,
        user: User,
        *,
        at: float | None = None,
    ) -> None:
        # Paid already: only the signature counts now, not the age or what is on sale.
        order = read(payload, self._key, now=self._clock(), ttl=None)
        if isinstance(order, BadPayload):
            # Pre-checkout refuses these; one paid anyway is for an operator to look at.
            _log.error("payment %s has a payload this bot did not sign", charge_id)
            return
        payment, first = await self._payments.record(
            NewPayment(
                charge_id=charge_id,
                chat_id=order.chat_id,
                user_id=user.id,
                buyer_name=user.full_name,
                lang=language_for(user.language_code).value,
                message_thread_id=order.thread_id,
                credits=order.pack.credits,
                stars=stars,
            ),
            now=self._clock() if at is None else at,
        )
        if not first:
            _log.info("payment %s again: its credits were added before", charge_id)
            return
        _log.info(
            "payment %s: %d credits to chat %d for %d stars",
            charge_id,
            payment.credits,
            payment.chat_id,
            payment.stars,
        )
        await self._send_receipt(bot, payment)

    async def _send_receipt(self, bot: Bot, payment: Payment) -> None:
        group = payment.chat_id < 0
        balance = await self._billing.balance(
            payment.chat_id, "group" if group else "private", None
        )
        text = receipt_text(
            Lang(payment.lang),
            payment.buyer_name,
            payment.credits,
            payment.stars,
            balance,
            group=group,
        )
        try:
            sent = await bot.send_message(
                payment.chat_id, text, message_thread_id=payment.message_thread_id
            )
        except (BadRequest, Forbidden) as error:
            # The chat is gone or blocked us: the credits are there all the same.
            _log.warning("payment %s: no receipt: %s", payment.charge_id, error)
            await self._payments.note_receipt(payment.charge_id, 0)
            return
        await self._payments.note_receipt(payment.charge_id, sent.message_id)

    async def recover(self, bot: Bot) -> None:
        """At start-up, before updates flow: payments Telegram handed over that were never
        recorded, from the bot's Star transactions; then receipts that did not go out. A
        Telegram error skips what it hit (the next start tries again), never the start."""
        try:
            await self._reconcile(bot)
        except TelegramError as error:
            _log.warning("could not read the bot's Star transactions: %s", error)
        for payment in await self._payments.without_receipt():
            try:
                await self._send_receipt(bot, payment)
            except TelegramError as error:
                _log.warning("payment %s: receipt not sent: %s", payment.charge_id, error)

    async def _reconcile(self, bot: Bot) -> None:
        """Transactions come oldest first: look from a page before where the last look
        ended (a refund comes after its payment) to the end."""
        start = max(0, await self._payments.scan_offset() - PAGE)
        paid: dict[str, StarTransaction] = {}
        refunded: set[str] = set()
        offset = start
        while True:
            batch = (await bot.get_star_transactions(offset=offset, limit=PAGE)).transactions
            for transaction in batch:
                if isinstance(transaction.receiver, TransactionPartnerUser):
                    refunded.add(transaction.id)
                source = transaction.source
                if (
                    isinstance(source, TransactionPartnerUser)
                    and source.transaction_type == "invoice_payment"
                    and source.invoice_payload
                ):
                    paid[transaction.id] = transaction
            offset += len(batch)
            if len(batch) < PAGE:
                break
        known = await self._payments.known(list(paid))
        for charge_id, transaction in paid.items():
            if charge_id in known or charge_id in refunded:
                continue
            source = transaction.source
            assert isinstance(source, TransactionPartnerUser)
            assert source.invoice_payload
            _log.warning("payment %s was never recorded: recording it now", charge_id)
            await self._settle(
                bot,
                charge_id,
                source.invoice_payload,
                transaction.amount,
                source.user,
                at=transaction.date.timestamp(),
            )
        await self._payments.note_scan_offset(offset)

    # --- what Telegram asks of bots that take payments -----------------------------------------

    async def paysupport(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Without words: how to get help. With them: the question, to the operators."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        lang = lang_of(update)
        question = text_after_command(message).strip()
        if not question:
            if self._paysupport_text:
                await reply(message, catalog.escape(self._paysupport_text))
            else:
                await reply(message, catalog.text(lang, "paysupport"))
            return
        charges = await self._payments.of_user(user.id)
        await self._alerts.payment_question(
            catalog.text(
                Lang.EN,
                "paysupport.to_operator",
                user=user.full_name,
                user_id=user.id,
                chat_id=message.chat.id,
                question=shorten(question, MAX_QUESTION_CHARS),
                charges=", ".join(charges) or catalog.text(Lang.EN, "paysupport.no_charges"),
            )
        )
        await reply(message, catalog.text(lang, "paysupport.sent"))

    async def terms(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        if self._terms_text:
            await reply(message, catalog.escape(self._terms_text))
        else:
            await reply(message, catalog.text(lang_of(update), "terms"))


def shop_menu(
    lang: Lang, packs: Sequence[Pack], cost_of_a_set: int, *, group: bool
) -> tuple[str, InlineKeyboardMarkup]:
    """/buy: what each pack buys, and a button per pack."""
    lines = "\n".join(
        text(
            lang,
            "shop.pack_line",
            credits=Markup(text(lang, "count.credits", n=p.credits)),
            sets=Markup(text(lang, "count.image_sets", n=image_sets(p.credits, cost_of_a_set))),
            stars=p.stars,
        )
        for p in packs
    )
    key = "shop.menu_group" if group else "shop.menu_private"
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    text(lang, "shop.button", credits=p.credits, stars=p.stars),
                    callback_data=callback_data.encode(Buy(p.credits, p.stars)),
                )
            ]
            for p in packs
        ]
    )
    return text(lang, key, cost=cost_of_a_set, packs=Markup(lines)), keyboard


def receipt_text(
    lang: Lang, buyer: str, credits: int, stars: int, balance: Balance, *, group: bool
) -> str:
    return text(
        lang,
        "shop.receipt_group" if group else "shop.receipt_private",
        buyer=buyer,
        credits=credits,
        stars=stars,
        available=balance.available,
        purchased=balance.purchased,
        granted=balance.granted,
        daily_left=balance.daily_left,
    )
