"""/imagine end to end: an update in, Bot API and upstream calls out, rows in SQLite."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fakes.kie import HELD, FakeKie, Scenario
from fakes.telegram import BOT_USERNAME, Call, FakeTelegram, FakeUser
from tests.conftest import FAST, RunningBot, StartBot, eventually

ANN = FakeUser(1001, "Ann", "en")


async def deliver(telegram: FakeTelegram, chat_id: int) -> None:
    """Wait for the message with the result's buttons (the last step of a delivery)."""
    await telegram.wait_for(
        lambda: any(
            c.ok and c.json("reply_markup") for c in telegram.calls_of("sendMessage", chat_id)
        )
    )


async def test_private_chat_gets_status_album_and_buttons(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    command = telegram.send_text(chat, ANN, "/imagine a red fox in snow --ar 3:2")
    await deliver(telegram, chat.id)

    # The upstream got exactly the documented text-to-image request.
    [created] = kie.created
    assert created.request == {
        "model": "grok-imagine/text-to-image",
        "input": {"prompt": "a red fox in snow", "aspect_ratio": "3:2"},
    }

    sends = [c for c in telegram.calls if c.method.startswith("send") and c.ok]
    methods = [c.method for c in sends if c.method != "sendChatAction"]
    assert methods == ["sendMessage", "sendMediaGroup", "sendMessage"]

    # 1. One status message, answering the command.
    status = sends[0]
    assert status.params["text"].startswith("⏳ Generating…")
    assert status.json("reply_parameters")["message_id"] == command["message_id"]
    assert any(c.params["action"] == "upload_photo" for c in telegram.calls_of("sendChatAction"))

    # 2. The six images as one album, the prompt as its caption.
    album = telegram.calls_of("sendMediaGroup", chat.id)[0]
    media = album.json("media")
    assert [m["media"] for m in media] == [
        f"{kie.url}/files/{created.task_id}/{i}.png" for i in range(6)
    ]
    assert media[0]["caption"] == "a red fox in snow"
    assert len(album.result) == 6
    # By URL without asking the file server first: no HEAD per image on every delivery.
    assert kie.head_requests == 0

    # 3. The buttons: one 🎬 per image, then 🔁, under the album.
    buttons = telegram.calls_of("sendMessage", chat.id)[-1]
    keyboard = buttons.json("reply_markup")["inline_keyboard"]
    labels = [b["text"] for row in keyboard for b in row]
    assert labels == ["🎬 1", "🎬 2", "🎬 3", "🎬 4", "🎬 5", "🎬 6", "🔁"]
    assert buttons.json("reply_parameters")["message_id"] == album.result[0]["message_id"]

    # 4. The status message is gone, and the task is recorded as delivered.
    status_id = status.result["message_id"]
    await telegram.wait_for(lambda: telegram.message(chat.id, status_id).deleted)
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert task["upstream_task_id"] == created.task_id
    assert json.loads(task["album_message_ids"]) == [m["message_id"] for m in album.result]
    assert task["buttons_message_id"] == buttons.result["message_id"]


async def test_default_aspect_ratio_is_square(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a lighthouse")
    await deliver(telegram, chat.id)
    assert kie.created[0].request["input"] == {"prompt": "a lighthouse", "aspect_ratio": "1:1"}


@pytest.mark.parametrize(
    "prompt",
    [
        '<b>bold</b> & <script>alert("x")</script> &amp; &lt;',
        "*stars* _under_ `code` [link](http://x) ~~strike~~ ||spoiler|| \\escape",
        "многострочный\nпромпт с эмодзи 🦊 и 'кавычками'",
    ],
)
async def test_prompt_with_markup_characters_reaches_upstream_unchanged(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot, prompt: str
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, f"/imagine {prompt} --ar 2:3")
    await deliver(telegram, chat.id)
    assert kie.created[0].request["input"]["prompt"] == prompt
    # Telegram parsed the HTML caption back into exactly the prompt.
    album = telegram.calls_of("sendMediaGroup", chat.id)[0]
    assert album.result[0]["caption"] == prompt


async def test_long_prompt_caption_is_cut_to_telegram_limit(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    prompt = "a fox & a hound " * 300  # 4800 characters, every one of them escaped or not
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, f"/imagine {prompt}")
    await deliver(telegram, chat.id)
    assert kie.created[0].request["input"]["prompt"] == prompt.strip()
    caption = telegram.calls_of("sendMediaGroup", chat.id)[0].result[0]["caption"]
    assert len(caption) <= 1024
    assert caption.endswith("…")


async def test_group_command_addressed_to_this_bot(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    group = telegram.group_chat(-100500)
    telegram.send_text(group, ANN, f"/imagine@{BOT_USERNAME} a castle --ar 16:9")
    await deliver(telegram, group.id)
    assert kie.created[0].request["input"] == {"prompt": "a castle", "aspect_ratio": "16:9"}
    [task] = bot.tasks()
    assert (task["chat_id"], task["chat_type"], task["user_id"]) == (group.id, "group", ANN.id)


async def test_command_for_another_bot_is_ignored(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    group = telegram.group_chat(-100501)
    telegram.send_text(group, ANN, "/imagine@some_other_bot a castle")
    telegram.send_text(group, ANN, "/help")  # the next update, to know the first was handled
    await telegram.wait_for_call("sendMessage", group.id)
    assert kie.create_attempts == 0
    assert bot.tasks() == []
    assert [c.params["text"][:20] for c in telegram.calls_of("sendMessage", group.id)] == [
        "<b>Grok Imagine in T"
    ]


async def test_edited_command_starts_nothing(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    command = telegram.send_text(chat, ANN, "/imagine a boat")
    await deliver(telegram, chat.id)
    telegram.edit_text(chat, ANN, command["message_id"], "/imagine a bigger boat")
    telegram.send_text(chat, ANN, "/help")
    await telegram.wait_for(
        lambda: any("Grok Imagine" in c.params["text"] for c in telegram.calls_of("sendMessage"))
    )
    assert len(kie.created) == 1
    assert len(bot.tasks()) == 1


async def test_single_image_is_sent_as_photo(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = Scenario(images=1)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine one cat")
    await deliver(telegram, chat.id)
    assert telegram.calls_of("sendMediaGroup") == []
    [photo] = telegram.calls_of("sendPhoto", chat.id)
    assert photo.params["caption"] == "one cat"
    keyboard = telegram.calls_of("sendMessage", chat.id)[-1].json("reply_markup")
    assert [b["text"] for row in keyboard["inline_keyboard"] for b in row] == ["🎬 1", "🔁"]


async def test_buttons_follow_the_number_of_images_returned(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = Scenario(images=4)  # quality mode returns four
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine four dogs")
    await deliver(telegram, chat.id)
    assert len(telegram.calls_of("sendMediaGroup")[0].json("media")) == 4
    keyboard = telegram.calls_of("sendMessage", chat.id)[-1].json("reply_markup")
    assert [b["text"] for row in keyboard["inline_keyboard"] for b in row] == [
        "🎬 1",
        "🎬 2",
        "🎬 3",
        "🎬 4",
        "🔁",
    ]


async def test_record_not_ready_right_after_creation_is_not_a_failure(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = replace(HELD, not_ready_for=3600)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine patience")
    # 422 "recordInfo is null" answers first, and the bot reads again...
    await eventually(lambda: kie.created and kie.created[0].status_reads >= 2)
    kie.finish(kie.created[0])  # ...until the record is there, with the result
    await deliver(telegram, chat.id)
    assert (await bot.wait_until_settled())[0]["state"] == "delivered"


async def test_polling_learns_when_results_can_first_be_there(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    # Status reads are scarce (~10 a second for the whole account): once ten tasks have
    # shown how long this kind takes, a new task's first read waits for that.
    kie.scenario = Scenario(duration=0.6, not_ready_for=0.0)
    bot = await start_bot()
    chat = telegram.private_chat(ANN)
    for number in range(10):
        telegram.send_text(chat, ANN, f"/imagine teacher {number}")
    await bot.wait_until_settled(count=10)
    telegram.send_text(chat, ANN, "/imagine learner")
    tasks = await bot.wait_until_settled(count=11)
    assert tasks[10]["state"] == "delivered"
    # Without what the ten taught, the first look would come after 50 ms. They were seen
    # running from 50 ms on and done from 0.6 s on, so the midpoint it learned is 0.325 s
    # or more (more on a busy machine: a bound that load can only make truer).
    learner = kie.created[10]
    assert learner.read_times[0] - learner.created_at >= 0.3


async def test_status_message_counts_seconds_while_working(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = HELD
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a slow one")

    def edits() -> list[str]:
        return [c.params["text"] for c in telegram.calls_of("editMessageText", chat.id) if c.ok]

    await telegram.wait_for(
        lambda: any(t.startswith("🎨 Generating… working, 1 s") for t in edits())
    )
    kie.finish(kie.created[0])
    await deliver(telegram, chat.id)
    assert len(edits()) == len(set(edits()))  # never the same text twice ("not modified")
    # Not even the first edit repeats what the status message was posted with.
    assert all(c.ok for c in telegram.calls_of("editMessageText", chat.id))


async def test_group_status_edits_are_spaced_out(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    await start_bot(timing=replace(FAST, status=replace(FAST.status, private=0.1, group=0.5)))
    kie.scenario = HELD
    group = telegram.group_chat(-100502)
    telegram.send_text(group, ANN, "/imagine a slow group one")

    def edits() -> list[Call]:
        return [c for c in telegram.calls_of("editMessageText", group.id) if c.ok]

    await telegram.wait_for(lambda: len(edits()) >= 3)
    kie.finish(kie.created[0])
    await deliver(telegram, group.id)
    [posted] = [c for c in telegram.calls_of("sendMessage", group.id) if c.ok][:1]
    shown = edits()
    # Ticks every 0.5 s or more (private chats here tick every 0.1 s), and only when the
    # shown whole seconds change: over the time they spanned, at most one per half second
    # (and one for the jitter of their arrival). How far apart they leave is the pacer's
    # schedule, tested on a virtual clock in test_pace.py and test_flood.py.
    assert len(shown) <= (shown[-1].at - posted.at) / 0.5 + 2
    texts = [c.params["text"] for c in shown]
    assert len(texts) == len(set(texts))


async def test_russian_user_gets_russian_messages(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    ivan = FakeUser(1002, "Иван", "ru")
    chat = telegram.private_chat(ivan)
    telegram.send_text(chat, ivan, "/imagine лиса")
    await deliver(telegram, chat.id)
    first, *_, last = [c.params["text"] for c in telegram.calls_of("sendMessage", chat.id)]
    assert first.startswith("⏳ Генерирую…")
    assert last.startswith("🎬 оживляет картинку")


async def test_images_over_the_by_url_cap_are_uploaded(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = Scenario(images=2, image_bytes=6 * 1024 * 1024)  # over the 5 MB by-URL cap
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine big pictures")
    await deliver(telegram, chat.id)
    # By URL first, as nearly every result fits; Telegram refuses, and only then does the
    # bot ask each item's size and upload them.
    by_url, uploaded = telegram.calls_of("sendMediaGroup", chat.id)
    assert not by_url.ok
    assert kie.head_requests == 2
    assert uploaded.ok
    assert all(m["media"].startswith("attach://") for m in uploaded.json("media"))
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert len(json.loads(task["media_file_ids"])) == 2


async def test_telegram_that_cannot_fetch_the_urls_gets_uploads(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    # The server will not tell the size, so the bot tries by URL; Telegram cannot take 6 MB.
    kie.scenario = Scenario(images=2, image_bytes=6 * 1024 * 1024, size_on_head=False)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine big pictures")
    await deliver(telegram, chat.id)
    by_url, uploaded = telegram.calls_of("sendMediaGroup", chat.id)
    assert not by_url.ok
    assert "failed to get HTTP URL content" in (by_url.error or "")
    assert uploaded.ok
    assert all(m["media"].startswith("attach://") for m in uploaded.json("media"))
    assert (await bot.wait_until_settled())[0]["state"] == "delivered"


async def test_one_oversized_image_does_not_lose_the_other_five(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = Scenario(sizes=((3, 12 * 1024 * 1024),))  # over the 10 MB photo upload cap
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine five and a giant")
    await deliver(telegram, chat.id)
    [album] = [c for c in telegram.calls_of("sendMediaGroup", chat.id) if c.ok]
    assert len(album.json("media")) == 5
    [document] = [c for c in telegram.calls_of("sendDocument", chat.id) if c.ok]
    assert document.result["document"]["file_size"] >= 12 * 1024 * 1024
    [task] = await bot.wait_until_settled()
    ids = json.loads(task["album_message_ids"])
    # Message ids kept by result index, so /animate on any of them finds the right image.
    assert ids[3] == document.result["message_id"]
    assert [ids[i] for i in (0, 1, 2, 4, 5)] == [m["message_id"] for m in album.result]
    keyboard = telegram.calls_of("sendMessage", chat.id)[-1].json("reply_markup")
    assert len([b for row in keyboard["inline_keyboard"] for b in row]) == 7  # 🎬 × 6 and 🔁


async def test_a_message_delivered_again_makes_one_task_charged_once(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    # Telegram delivers an update again when its webhook went unanswered (a replica killed
    # after it recorded the task): the chat's message makes one task, one charge, one album.
    chat = telegram.private_chat(ANN)
    message = telegram.send_text(chat, ANN, "/imagine a fox, once")
    await bot.wait_until_settled()
    telegram.deliver_again(message)
    telegram.send_text(chat, ANN, "/imagine the next one")
    tasks = await bot.wait_until_settled(count=2)
    assert [t["prompt"] for t in tasks] == ["a fox, once", "the next one"]
    assert len(kie.created) == 2
    reserves = bot.rows("SELECT task_id FROM ledger WHERE kind = 'reserve' ORDER BY id")
    assert [r["task_id"] for r in reserves] == [t["id"] for t in tasks]
