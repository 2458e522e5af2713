"""/video, upscale, and videos delivered within Telegram's limits."""

from __future__ import annotations

import json

from fakes.kie import FakeKie, FakeTask, Scenario
from fakes.telegram import Call, FakeChat, FakeTelegram, FakeUser
from tests.conftest import RunningBot

ANN = FakeUser(1001, "Ann", "en")
MB = 1024 * 1024


def created(kie: FakeKie, model: str) -> list[FakeTask]:
    return [t for t in kie.created if t.request["model"] == model]


def videos(telegram: FakeTelegram, chat: FakeChat) -> list[Call]:
    return [c for c in telegram.calls_of("sendVideo", chat.id) if c.ok]


async def test_video_command_makes_a_text_to_video_task(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/video a red fox running & jumping --ar 16:9")
    [task] = await bot.wait_until_settled()
    [upstream] = created(kie, "grok-imagine/text-to-video")
    assert upstream.request["input"] == {
        "prompt": "a red fox running & jumping",
        "aspect_ratio": "16:9",
    }
    [video] = videos(telegram, chat)
    assert video.result["caption"] == "a red fox running & jumping"
    assert video.params["video"] == f"{kie.url}/files/{upstream.task_id}/0.mp4"  # by URL
    assert (task["kind"], task["cost"], task["state"]) == ("text_to_video", 24, "delivered")


async def test_video_without_a_prompt_is_refused(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/video --ar 9:16")
    [reply] = await telegram.wait_for_call("sendMessage", chat.id)
    assert reply.result["text"].startswith("Tell me what the video should show")
    assert bot.tasks() == []


async def test_upscale_button_under_a_video_and_the_again_button(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/video waves at sunset")
    [first] = await bot.wait_until_settled()
    [video] = videos(telegram, chat)
    upscale, again = [b for row in video.json("reply_markup")["inline_keyboard"] for b in row]

    telegram.press(chat, ANN, video.result["message_id"], upscale["callback_data"])
    tasks = await bot.wait_until_settled(count=2)
    [upscaled] = created(kie, "grok-imagine/upscale")
    assert upscaled.request["input"] == {"task_id": first["upstream_task_id"]}
    assert (tasks[1]["kind"], tasks[1]["cost"]) == ("upscale", 12)
    upscaled_video = videos(telegram, chat)[1]
    assert "reply_markup" not in upscaled_video.params  # nothing more to do with it

    telegram.press(chat, ANN, video.result["message_id"], again["callback_data"])
    await bot.wait_until_settled(count=3)
    assert [t.request["input"] for t in created(kie, "grok-imagine/text-to-video")] == [
        {"prompt": "waves at sunset", "aspect_ratio": "1:1"}
    ] * 2


async def test_upscale_command_on_an_image_delivers_whatever_comes_back(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine a lighthouse")
    [source] = await bot.wait_until_settled()
    kie.scenario = Scenario(result="image", images=1)
    photo_id = json.loads(source["album_message_ids"])[2]
    telegram.send_text(chat, ANN, "/upscale", reply_to=photo_id)
    tasks = await bot.wait_until_settled(count=2)
    [upscaled] = created(kie, "grok-imagine/upscale")
    assert upscaled.request["input"] == {"task_id": source["upstream_task_id"]}
    [photo] = [c for c in telegram.calls_of("sendPhoto", chat.id) if c.ok]
    assert tasks[1]["buttons_message_id"] is None  # an upscaled image gets no buttons
    assert json.loads(tasks[1]["album_message_ids"]) == [photo.result["message_id"]]


async def test_upscale_without_a_reply_explains_itself(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/upscale")
    [reply] = await telegram.wait_for_call("sendMessage", chat.id)
    assert reply.result["text"] == "Reply /upscale to a video or an image I made."


async def test_video_over_the_by_url_cap_is_uploaded(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = Scenario(image_bytes=25 * MB)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/video a long one")
    [task] = await bot.wait_until_settled()
    [video] = videos(telegram, chat)
    assert isinstance(video.params["video"], bytes)  # uploaded, not by URL
    assert video.result["video"]["file_size"] >= 25 * MB
    assert task["state"] == "delivered"


async def test_video_over_fifty_megabytes_arrives_as_a_link(
    telegram: FakeTelegram, kie: FakeKie, bot: RunningBot
) -> None:
    kie.scenario = Scenario(image_bytes=51 * MB)
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/video a huge one")
    [task] = await bot.wait_until_settled()
    assert videos(telegram, chat) == []
    link = [c for c in telegram.calls_of("sendMessage", chat.id) if c.ok][-1]
    upstream = kie.created[0]
    assert link.result["text"].startswith("📎 Too large to send through Telegram")
    assert link.result["text"].endswith("1: 51 MB")
    assert link.result["entities"][0]["url"] == f"{kie.url}/files/{upstream.task_id}/0.mp4"
    labels = [b["text"] for row in link.json("reply_markup")["inline_keyboard"] for b in row]
    assert labels == ["⬆ Upscale", "🔁 Again"]
    assert task["state"] == "delivered"
    assert kie.image_fetches == 0  # never downloaded what could not be uploaded anyway
