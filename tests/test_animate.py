"""Animate: 🎬 under an album, /animate on our images and on a user's own photos."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from fakes.kie import FakeKie, FakeTask, png
from fakes.telegram import Call, FakeChat, FakeTelegram, FakeUser
from tests.conftest import RunningBot, StartBot, eventually, public_endpoint

ANN = FakeUser(1001, "Ann", "en")
BOB = FakeUser(1002, "Bob", "en")


async def album_for(
    telegram: FakeTelegram, bot: RunningBot, chat: FakeChat, user: FakeUser = ANN
) -> tuple[dict[str, Any], int]:
    """/imagine and wait for the result; returns the task row and its buttons message id."""
    telegram.send_text(chat, user, "/imagine a red fox")
    [task] = await bot.wait_until_settled()
    return dict(task), task["buttons_message_id"]


def keyboard(telegram: FakeTelegram, chat: FakeChat, message_id: int) -> list[dict[str, Any]]:
    markup = telegram.message(chat.id, message_id).payload.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


async def draft_message(telegram: FakeTelegram, chat: FakeChat, count: int) -> Call:
    """The `count`-th message the bot sent in the chat, once it is there."""
    calls = await telegram.wait_for_call("sendMessage", chat.id, count=count)
    return calls[count - 1]


def created(kie: FakeKie, model: str) -> list[FakeTask]:
    return [t for t in kie.created if t.request["model"] == model]


async def test_animate_takes_two_presses_the_button_and_a_mode(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    source, buttons = await album_for(telegram, bot, chat)
    animate_3 = keyboard(telegram, chat, buttons)[2]
    query = telegram.press(chat, ANN, buttons, animate_3["callback_data"])
    await telegram.wait_for_answer(query)

    draft = await draft_message(telegram, chat, 3)  # status, buttons, then the draft
    assert draft.result["text"] == (
        "🎬 Animating image 3. Pick a mode to start.\n"
        "To describe the motion, reply to this message first, or use /animate your prompt."
    )
    modes = [b["text"] for b in draft.result["reply_markup"]["inline_keyboard"][0]]
    assert modes == ["😄 Fun", "🎞 Normal"]  # spicy is off unless the chat allows it
    normal = draft.result["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    # The second press starts the task.
    await telegram.wait_for_answer(telegram.press(chat, ANN, draft.result["message_id"], normal))

    tasks = await bot.wait_until_settled(count=2)
    [video_task] = created(kie, "grok-imagine/image-to-video")
    assert video_task.request["input"] == {
        "task_id": source["upstream_task_id"],
        "index": 2,
        "mode": "normal",
    }
    assert tasks[1]["kind"] == "image_to_video"
    assert tasks[1]["cost"] == 24
    [video] = [c for c in telegram.calls_of("sendVideo", chat.id) if c.ok]
    labels = [b["text"] for row in video.json("reply_markup")["inline_keyboard"] for b in row]
    assert labels == ["⬆ Upscale", "🔁 Again"]
    # No motion prompt, no caption (python-telegram-bot #5307 sent "" as "[]").
    assert "caption" not in video.params
    assert "caption" not in video.result
    assert tasks[1]["buttons_message_id"] == video.result["message_id"]
    assert json.loads(tasks[1]["media_file_ids"]) == [video.result["video"]["file_id"]]
    # The draft message no longer offers anything.
    final = telegram.message(chat.id, draft.result["message_id"]).payload
    assert final["text"] == "🎬 Animating image 3, mode Normal."
    assert "reply_markup" not in final


async def test_motion_prompt_by_reply_and_spicy_where_the_chat_allows_it(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    await bot.write(
        "INSERT INTO chat_settings (chat_id, allow_spicy, updated_at) VALUES (?, 1, ?)",
        (chat.id, time.time()),
    )
    source, buttons = await album_for(telegram, bot, chat)
    telegram.press(chat, ANN, buttons, keyboard(telegram, chat, buttons)[0]["callback_data"])
    draft = await draft_message(telegram, chat, 3)
    draft_id = draft.result["message_id"]
    modes = draft.result["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in modes] == ["😄 Fun", "🎞 Normal", "🌶 Spicy"]

    # A person replies after reading it; the test waits for the bot to have recorded it
    # (on PostgreSQL the reply could otherwise overtake that record).
    await eventually(lambda: bot.rows("SELECT 1 FROM drafts WHERE message_id = ?", (draft_id,)))
    telegram.send_text(chat, ANN, "she turns & smiles <slowly>", reply_to=draft_id)
    await telegram.wait_for(lambda: "Motion" in telegram.message(chat.id, draft_id).payload["text"])
    assert telegram.message(chat.id, draft_id).payload["text"] == (
        "🎬 Animating image 1.\nMotion: she turns & smiles <slowly>\nPick a mode to start."
    )
    await telegram.wait_for_answer(telegram.press(chat, ANN, draft_id, modes[2]["callback_data"]))
    await bot.wait_until_settled(count=2)
    [video_task] = created(kie, "grok-imagine/image-to-video")
    assert video_task.request["input"] == {
        "task_id": source["upstream_task_id"],
        "index": 0,
        "prompt": "she turns & smiles <slowly>",
        "mode": "spicy",
    }


async def test_double_presses_and_other_members_create_one_task(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    group = telegram.group_chat(-100950)
    _, buttons = await album_for(telegram, bot, group)
    animate_2 = keyboard(telegram, group, buttons)[1]["callback_data"]
    first = telegram.press(group, ANN, buttons, animate_2)
    second = telegram.press(group, ANN, buttons, animate_2)
    answers = sorted(
        [await telegram.wait_for_answer(first), await telegram.wait_for_answer(second)]
    )
    assert answers == ["", "The choice for this image is waiting above."]
    draft = await draft_message(telegram, group, 3)
    draft_id = draft.result["message_id"]
    await asyncio.sleep(0.2)
    assert len(telegram.calls_of("sendMessage", group.id)) == 3  # one draft message only

    fun = draft.result["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert await telegram.wait_for_answer(telegram.press(group, BOB, draft_id, fun)) == (
        "Only the person who asked, or a chat admin, can use these buttons."
    )
    presses = [telegram.press(group, ANN, draft_id, fun) for _ in range(3)]
    for query in presses:
        await telegram.wait_for_answer(query)
    await bot.wait_until_settled(count=2)
    await asyncio.sleep(0.2)
    assert len(created(kie, "grok-imagine/image-to-video")) == 1
    assert len(bot.tasks()) == 2


async def test_animate_command_on_one_of_our_images_with_a_prompt(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    source, _ = await album_for(telegram, bot, chat)
    album_ids = json.loads(source["album_message_ids"])
    telegram.send_text(chat, ANN, "/animate the snow starts falling", reply_to=album_ids[4])
    draft = await draft_message(telegram, chat, 3)
    assert draft.result["text"] == (
        "🎬 Animating image 5.\nMotion: the snow starts falling\nPick a mode to start."
    )
    fun = draft.result["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await telegram.wait_for_answer(telegram.press(chat, ANN, draft.result["message_id"], fun))
    await bot.wait_until_settled(count=2)
    [video_task] = created(kie, "grok-imagine/image-to-video")
    assert video_task.request["input"] == {
        "task_id": source["upstream_task_id"],
        "index": 4,
        "prompt": "the snow starts falling",
        "mode": "fun",
    }


async def test_own_photo_by_caption_goes_through_the_upload_api_byte_for_byte(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(provider_upload_url=kie.url)
    chat = telegram.private_chat(ANN)
    photo = png(7, pad_to=300_000)
    telegram.send_photo(chat, ANN, photo, caption="/animate waves roll in")
    draft = await draft_message(telegram, chat, 1)
    assert draft.result["text"] == (
        "🎬 Animating your photo.\nMotion: waves roll in\nPick a mode to start."
    )
    modes = draft.result["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in modes] == ["😄 Fun", "🎞 Normal"]  # never spicy for own photos
    [uploaded] = kie.uploads.values()
    assert uploaded == photo
    await telegram.wait_for_answer(
        telegram.press(chat, ANN, draft.result["message_id"], modes[1]["callback_data"])
    )
    [task] = await bot.wait_until_settled()
    [video_task] = created(kie, "grok-imagine/image-to-video")
    [url] = video_task.request["input"]["image_urls"]
    assert video_task.request["input"] == {
        "image_urls": [url],
        "prompt": "waves roll in",
        "mode": "normal",
    }
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == photo
    assert task["state"] == "delivered"


async def animate_own_photo(
    telegram: FakeTelegram, bot: RunningBot, chat: FakeChat, content: bytes
) -> None:
    """Ann sends `content` as a PNG file, replies /animate to it and picks Fun; the
    animation is made."""
    sent = telegram.send_document(chat, ANN, content, mime_type="image/png", file_name="cat.png")
    telegram.send_text(chat, ANN, "/animate", reply_to=sent["message_id"])
    draft = await draft_message(telegram, chat, 1)
    fun = draft.result["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await telegram.wait_for_answer(telegram.press(chat, ANN, draft.result["message_id"], fun))
    await bot.wait_until_settled()


async def test_own_photo_is_served_by_the_bot_when_the_upstream_has_no_upload(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(**public_endpoint())
    chat = telegram.private_chat(ANN)
    content = png(3, pad_to=50_000)
    await animate_own_photo(telegram, bot, chat, content)
    [video_task] = created(kie, "grok-imagine/image-to-video")
    [url] = video_task.request["input"]["image_urls"]
    assert url.startswith(f"{bot.settings.public_base}/files/")
    assert len(url.rsplit("/", 1)[1]) >= 40  # unguessable
    async with httpx.AsyncClient() as client:
        served = await client.get(url)
        guessed = await client.get(f"{bot.settings.public_base}/files/guess")
    assert served.content == content
    assert served.headers["content-type"] == "image/png"
    assert guessed.status_code == 404
    assert kie.uploads == {}


async def test_own_photo_made_again_is_handed_over_anew_from_telegram(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # The bot's own link to a user's photo lives a day: 🔁 under the video, pressed later,
    # hands the upstream a fresh link to Telegram's copy of the photo.
    bot = await start_bot(**public_endpoint())
    chat = telegram.private_chat(ANN)
    content = png(5, pad_to=20_000)
    await animate_own_photo(telegram, bot, chat, content)
    [video] = [c for c in telegram.calls_of("sendVideo", chat.id) if c.ok]
    again = video.json("reply_markup")["inline_keyboard"][0][-1]
    assert again["text"] == "🔁 Again"
    await telegram.wait_for_answer(
        telegram.press(chat, ANN, video.result["message_id"], again["callback_data"])
    )
    tasks = await bot.wait_until_settled(count=2)
    assert [t["state"] for t in tasks] == ["delivered", "delivered"]
    first, second = created(kie, "grok-imagine/image-to-video")
    [first_url], [second_url] = (
        first.request["input"]["image_urls"],
        second.request["input"]["image_urls"],
    )
    assert second_url != first_url
    assert second_url.startswith(f"{bot.settings.public_base}/files/")
    async with httpx.AsyncClient() as client:
        assert (await client.get(second_url)).content == content


@pytest.mark.parametrize(
    ("content", "mime_type", "reply"),
    [
        (b"GIF89a" + b"x" * 100, "image/gif", "I can animate JPEG, PNG or WEBP images only."),
        (b"%PDF-1.7" + b"x" * 100, "image/png", "I can animate JPEG, PNG or WEBP images only."),
        (
            png(1, pad_to=11 * 1024 * 1024),
            "image/png",
            "That image is 11.0 MB; the limit is 10 MB.",
        ),
    ],
)
async def test_own_images_that_cannot_be_animated_are_refused(
    telegram: FakeTelegram,
    kie: FakeKie,
    start_bot: StartBot,
    content: bytes,
    mime_type: str,
    reply: str,
) -> None:
    bot = await start_bot(provider_upload_url=kie.url)
    chat = telegram.private_chat(ANN)
    telegram.send_document(chat, ANN, content, mime_type=mime_type, caption="/animate")
    [answer_call] = await telegram.wait_for_call("sendMessage", chat.id)
    assert answer_call.result["text"] == reply
    assert kie.uploads == {}
    assert bot.rows("SELECT * FROM drafts") == []


async def test_own_photos_need_an_upload_api_or_a_public_url(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_photo(chat, ANN, png(2), caption="/animate")
    [answer_call] = await telegram.wait_for_call("sendMessage", chat.id)
    assert answer_call.result["text"] == "Animating your own photos is not available on this bot."
    assert telegram.downloads == []


async def test_animate_without_an_image_explains_itself(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/animate make it move")
    [answer_call] = await telegram.wait_for_call("sendMessage", chat.id)
    assert answer_call.result["text"].startswith("Reply /animate to one of my images")
    assert bot.tasks() == []
