"""The Telegram test server refuses what Telegram refuses; otherwise the other tests prove little.

Driven through PTB's own `Bot`, as the bot under test drives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputMediaPhoto,
    InputTextMessageContent,
    LabeledPrice,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, RetryAfter

from fakes.bot_under_test import EPHEMERAL_START, free_port
from fakes.kie import png
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import BOT_TOKEN

ANN = FakeUser(1001, "Ann", "en")


@pytest.fixture
async def api(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    bot = Bot(BOT_TOKEN, base_url=f"{telegram.url}/bot{{token}}")
    async with bot:
        yield bot


async def test_unknown_token_is_unauthorized(telegram: FakeTelegram) -> None:
    bot = Bot("1:wrong", base_url=f"{telegram.url}/bot{{token}}")
    with pytest.raises(InvalidToken):
        await bot.get_me()


@pytest.mark.parametrize("count", [1, 11])
async def test_album_needs_two_to_ten_items(telegram: FakeTelegram, api: Bot, count: int) -> None:
    chat = telegram.private_chat(ANN)
    media = [InputMediaPhoto(png(i)) for i in range(count)]
    with pytest.raises(BadRequest, match="(?i)2-10 items"):
        await api.send_media_group(chat.id, media)


async def test_callback_data_over_64_bytes(telegram: FakeTelegram, api: Bot) -> None:
    chat = telegram.private_chat(ANN)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await api.send_message(chat.id, "hi", reply_markup=markup)
    await api.send_message(
        chat.id,
        "ok",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 32)]]),
    )


@pytest.mark.parametrize(
    "html",
    [
        "<b>unclosed",
        "a < b",
        "<script>x</script>",
        "fish & chips",
        "&nbsp;",
        "<b><i>x</b></i>",
        "1 > 0",
    ],
)
async def test_html_that_does_not_parse(telegram: FakeTelegram, api: Bot, html: str) -> None:
    chat = telegram.private_chat(ANN)
    with pytest.raises(BadRequest, match="(?i)parse entities"):
        await api.send_message(chat.id, html, parse_mode=ParseMode.HTML)


async def test_html_that_parses(telegram: FakeTelegram, api: Bot) -> None:
    chat = telegram.private_chat(ANN)
    message = await api.send_message(
        chat.id, '<b>a</b> &lt;&amp;&gt; <a href="http://x">y</a> <code>z</code>', parse_mode="HTML"
    )
    assert message.text == "a <&> y z"


@pytest.mark.parametrize(("text", "error"), [(" ", "text is empty"), ("x" * 4097, "too long")])
async def test_text_empty_or_too_long(
    telegram: FakeTelegram, api: Bot, text: str, error: str
) -> None:
    chat = telegram.private_chat(ANN)
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await api.send_message(chat.id, text)


async def test_caption_over_1024(telegram: FakeTelegram, api: Bot) -> None:
    chat = telegram.private_chat(ANN)
    with pytest.raises(BadRequest, match="(?i)caption is too long"):
        await api.send_photo(chat.id, png(1), caption="x" * 1025)


async def test_edit_that_changes_nothing(telegram: FakeTelegram, api: Bot) -> None:
    chat = telegram.private_chat(ANN)
    message = await api.send_message(chat.id, "same")
    with pytest.raises(BadRequest, match="(?i)not modified"):
        await api.edit_message_text("same", chat.id, message.message_id)
    await api.edit_message_text("changed", chat.id, message.message_id)


async def test_reply_to_a_missing_message(telegram: FakeTelegram, api: Bot) -> None:
    chat = telegram.private_chat(ANN)
    with pytest.raises(BadRequest, match="(?i)replied not found"):
        await api.send_message(chat.id, "x", reply_to_message_id=999)


async def test_unknown_chat_and_unknown_callback_query(telegram: FakeTelegram, api: Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await api.send_message(424242, "x")
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await api.answer_callback_query("12345")


async def test_photo_url_that_cannot_be_fetched(telegram: FakeTelegram, api: Bot) -> None:
    chat = telegram.private_chat(ANN)
    with pytest.raises(BadRequest):
        await api.send_photo(chat.id, "http://127.0.0.1:9/nothing.png")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_injected_flood_error_carries_retry_after(telegram: FakeTelegram, api: Bot) -> None:
    chat = telegram.private_chat(ANN)
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)
    with pytest.raises(RetryAfter) as raised:
        await api.send_message(chat.id, "x")
    assert raised.value.retry_after in (3, timedelta(seconds=3))
    await api.send_message(chat.id, "x")


# --- payments in Telegram Stars ------------------------------------------------------------


async def test_an_invoice_in_stars_takes_no_provider_token_and_one_price(
    telegram: FakeTelegram, api: Bot
) -> None:
    chat = telegram.private_chat(ANN)
    prices = [LabeledPrice("100 credits", 50)]
    sent = await api.send_invoice(chat.id, "100 credits", "Credits", "p", "XTR", prices)
    assert sent.invoice is not None
    assert sent.invoice.total_amount == 50
    with pytest.raises(BadRequest, match="(?i)payment_provider_invalid"):
        await api.send_invoice(chat.id, "100 credits", "Credits", "p", "USD", prices)
    with pytest.raises(BadRequest, match="(?i)payment_provider_invalid"):
        await api.send_invoice(
            chat.id, "100 credits", "Credits", "p", "XTR", prices, provider_token="tok"
        )
    two = [LabeledPrice("credits", 40), LabeledPrice("tax", 10)]
    with pytest.raises(BadRequest, match="(?i)stars_invoice_invalid"):
        await api.send_invoice(chat.id, "100 credits", "Credits", "p", "XTR", two)


@pytest.mark.parametrize(
    ("title", "description", "payload", "error"),
    [
        ("x" * 33, "Credits", "p", "invoice_title_invalid"),
        ("Credits", "", "p", "invoice_description_invalid"),
        ("Credits", "Credits", "", "invoice_payload_invalid"),
        ("Credits", "Credits", "p" * 129, "invoice_payload_invalid"),
    ],
)
async def test_an_invoice_outside_telegrams_limits_is_refused(
    telegram: FakeTelegram, api: Bot, title: str, description: str, payload: str, error: str
) -> None:
    chat = telegram.private_chat(ANN)
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await api.send_invoice(
            chat.id, title, description, payload, "XTR", [LabeledPrice("Credits", 5)]
        )


async def test_a_pre_checkout_query_is_answered_once_and_a_no_needs_a_reason(
    telegram: FakeTelegram, api: Bot
) -> None:
    chat = telegram.private_chat(ANN)
    prices = [LabeledPrice("100 credits", 50)]
    invoice = await api.send_invoice(chat.id, "100 credits", "Credits", "p", "XTR", prices)
    telegram.complete_payments = False
    query = telegram.checkout(chat, ANN, invoice.message_id)
    with pytest.raises(BadRequest, match="(?i)error_message_empty"):
        await api.answer_pre_checkout_query(query, ok=False)
    assert await api.answer_pre_checkout_query(query, ok=True)
    with pytest.raises(BadRequest, match="(?i)query_id_invalid"):
        await api.answer_pre_checkout_query(query, ok=True)
    payment = telegram.pay(query)
    assert await api.refund_star_payment(ANN.id, payment.charge_id)
    with pytest.raises(BadRequest, match="(?i)charge_already_refunded"):
        await api.refund_star_payment(ANN.id, payment.charge_id)
    with pytest.raises(BadRequest, match="(?i)charge_not_found"):
        await api.refund_star_payment(ANN.id, "no-such-charge")
    transactions = (await api.get_star_transactions()).transactions
    assert [t.id for t in transactions] == [payment.charge_id, payment.charge_id]
    assert transactions[0].source is not None
    assert transactions[1].receiver is not None


# --- inline mode and topics ------------------------------------------------------------------


def _article(result_id: str) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(result_id, "Create", InputTextMessageContent("Making…"))


@pytest.mark.parametrize(
    ("results", "error"),
    [
        ([_article(f"r{n}") for n in range(51)], "results_too_much"),
        ([_article("x" * 65)], "result_id_invalid"),
        ([_article("same"), _article("same")], "result_id_duplicate"),
    ],
)
async def test_an_inline_answer_outside_telegrams_limits_is_refused(
    telegram: FakeTelegram, api: Bot, results: list[InlineQueryResultArticle], error: str
) -> None:
    query = telegram.inline_query(ANN, "fox")
    with pytest.raises(BadRequest, match=f"(?i){error}"):
        await api.answer_inline_query(query, results)


async def test_only_a_result_with_a_keyboard_gets_an_inline_message_that_takes_no_upload(
    telegram: FakeTelegram, api: Bot
) -> None:
    query = telegram.inline_query(ANN, "fox")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Open", url="https://t.me/x")]])
    plain = _article("plain")
    with_keyboard = InlineQueryResultArticle(
        "keyed", "Create", InputTextMessageContent("Making…"), reply_markup=keyboard
    )
    assert await api.answer_inline_query(query, [plain, with_keyboard])
    assert telegram.choose(query, "plain") is None
    inline_message_id = telegram.choose(query, "keyed")
    assert inline_message_id is not None
    with pytest.raises(BadRequest, match="(?i)file upload"):
        await api.edit_message_media(InputMediaPhoto(png(0)), inline_message_id=inline_message_id)


async def test_a_message_goes_only_to_a_topic_the_forum_has(
    telegram: FakeTelegram, api: Bot
) -> None:
    forum = telegram.group_chat(-100777, forum=True)
    telegram.send_text(forum, ANN, "hello", thread_id=5)
    assert await api.send_message(forum.id, "in topic 5", message_thread_id=5)
    with pytest.raises(BadRequest, match="(?i)message thread not found"):
        await api.send_message(forum.id, "in topic 6", message_thread_id=6)


def test_ports_for_the_bot_come_from_outside_the_ephemeral_range_and_never_twice() -> None:
    """Regression: a port picked by binding port 0 was sometimes taken by an outgoing
    connection before the bot bound it ("address already in use")."""
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(20_000 <= port < EPHEMERAL_START for port in ports)
