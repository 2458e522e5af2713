"""Several upstream accounts as one pool, through the whole bot: re-routing a refused
create, pinned follow-ups (upscale, animate, status reads, callbacks with each account's
own signing key), the breaker's outage and recovery with one alert each way, routing by
capability, no re-send of a create whose outcome is unknown; and the accounts file, read
at start-up or refused in one line. (test_scheduler_line.py has the routing arithmetic.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.providers import AccountsError, load_accounts
from bot.providers.accounts import read_accounts_file
from bot.settings import Settings
from fakes.dialects import FakeGrokImagineApi
from fakes.kie import FakeKie, FakeTask, Scenario
from fakes.telegram import Call, FakeTelegram, FakeUser
from tests.conftest import (
    FAST,
    PROVIDER_KEY,
    FakeClock,
    RunningBot,
    StartBot,
    eventually,
    public_endpoint,
)

ANN = FakeUser(1001, "Ann", "en")
OPERATOR = FakeUser(4242, "Operator", "en")
B_KEY = "kie-b-key-7d1e0a44"
B_HMAC = "b-hmac-key-93c1"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def kie_b() -> AsyncIterator[FakeKie]:
    server = FakeKie(B_KEY, hmac_key=B_HMAC)
    await server.start()
    yield server
    await server.stop()


def accounts_file(folder: Path, *entries: dict[str, object]) -> Path:
    """A PROVIDERS_FILE with these `[[account]]`s."""
    lines = []
    for entry in entries:
        lines.append("[[account]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
    path = folder / "providers.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def kie_account(name: str, server: FakeKie, **more: object) -> dict[str, object]:
    return {
        "name": name,
        "provider": "kie",
        "api_key": server.api_key,
        "base_url": server.url,
        **more,
    }


def ok_calls(telegram: FakeTelegram, method: str, chat_id: int) -> list[Call]:
    return [c for c in telegram.calls_of(method, chat_id) if c.ok]


async def animation_draft(telegram: FakeTelegram, chat_id: int, opening: str) -> Call:
    """The animation draft message that starts with `opening`, once the bot sent it."""

    def found() -> Call | None:
        drafts = [
            c
            for c in ok_calls(telegram, "sendMessage", chat_id)
            if c.result["text"].startswith(opening)
        ]
        return drafts[-1] if drafts else None

    await eventually(found)
    draft = found()
    assert draft is not None
    return draft


async def in_rotation(bot: RunningBot, account: str) -> None:
    """Wait until the bot's /metrics say the account is in rotation."""
    wanted = f'imagine_upstream_account_in_rotation{{account="{account}"}} 1.0'
    async with httpx.AsyncClient() as client:
        for _ in range(500):
            if wanted in (await client.get(bot.http_url("/metrics"))).text:
                return
            await asyncio.sleep(0.02)
    raise TimeoutError(f"{account} never came back into rotation")


def made(server: FakeKie, model: str) -> list[FakeTask]:
    return [t for t in server.created if t.request["model"] == f"grok-imagine/{model}"]


async def test_refused_create_is_rerouted_and_follow_ups_stay_with_their_account(
    telegram: FakeTelegram, kie: FakeKie, kie_b: FakeKie, start_bot: StartBot, tmp_path: Path
) -> None:
    clock = FakeClock(time.time())
    providers = accounts_file(
        tmp_path, kie_account("a", kie), kie_account("b", kie_b, webhook_hmac_key=B_HMAC)
    )
    bot = await start_bot(
        providers_file=providers,
        admin_user_ids=f"{OPERATOR.id}",
        clock=clock,
        **public_endpoint(),
    )
    operators = telegram.private_chat(OPERATOR)
    chat = telegram.private_chat(ANN)

    # 1. a is out of credits: the task goes to b instead, and nobody pays for the outage.
    kie.fail_creates(402, "Insufficient credits")
    telegram.send_text(chat, ANN, "/imagine a red fox")
    [fox] = await bot.wait_until_settled()
    assert (fox["state"], fox["account"]) == ("delivered", "b")
    assert (kie.create_attempts, len(kie.created), len(kie_b.created)) == (1, 0, 1)
    ledger = bot.rows("SELECT kind, amount FROM ledger ORDER BY id")
    assert [(r["kind"], r["amount"]) for r in ledger] == [("reserve", 5), ("commit", 5)]
    [alert] = ok_calls(telegram, "sendMessage", operators.id)
    assert alert.result["text"].startswith("⚠️ The a account is out of credits")
    # b's callbacks came signed with b's key, and every status read went to b.
    assert [c.status for c in kie_b.callbacks] == [200]
    assert kie.unknown_reads == 0

    # 2. While a is out everything goes to b (a's balance, checked meanwhile, has not
    # grown); a top-up brings a back at the next check.
    telegram.send_text(chat, ANN, "/imagine while a rests")
    await bot.wait_until_settled(count=2)
    assert bot.tasks()[1]["account"] == "b"
    checks = kie.credit_checks
    await eventually(lambda: kie.credit_checks > checks + 1)
    assert len(ok_calls(telegram, "sendMessage", operators.id)) == 1  # still out
    kie.credits += 500
    await in_rotation(bot, "a")  # the next check put it back
    telegram.send_text(chat, ANN, "/imagine a is back")
    tasks = await bot.wait_until_settled(count=3)
    assert (tasks[2]["state"], tasks[2]["account"]) == ("delivered", "a")
    alerts = ok_calls(telegram, "sendMessage", operators.id)  # back: it took a task
    assert alerts[1].result["text"] == "✅ The a account is back in rotation."

    # 3. Follow-ups of the fox go to b, which made it, though a (the first) has as much
    # room: an upscale by its task id, an animation by task id and index.
    fox_photos = json.loads(fox["album_message_ids"])
    kie_b.scenario = Scenario(result="image", images=1)
    telegram.send_text(chat, ANN, "/upscale", reply_to=fox_photos[0])
    telegram.send_text(chat, ANN, "/animate slowly", reply_to=fox_photos[1])
    draft = await animation_draft(telegram, chat.id, "🎬 Animating image 2")
    normal = draft.result["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    await telegram.wait_for_answer(telegram.press(chat, ANN, draft.result["message_id"], normal))
    tasks = await bot.wait_until_settled(count=5)
    assert [t["account"] for t in tasks[3:]] == ["b", "b"]
    assert [t["state"] for t in tasks[3:]] == ["delivered", "delivered"]
    [upscaled] = made(kie_b, "upscale")
    assert upscaled.request["input"] == {"task_id": fox["upstream_task_id"]}
    [animated] = made(kie_b, "image-to-video")
    assert animated.request["input"]["task_id"] == fox["upstream_task_id"]
    assert animated.request["input"]["index"] == 1
    assert made(kie, "upscale") == made(kie, "image-to-video") == []

    # 4. b runs dry: an upscale only b could do waits for it, and an animation of the fox
    # goes to a with the image's URL instead; b stays out past OUTAGE_WAIT, and the upscale
    # is refunded.
    kie_b.credits = 0
    telegram.send_text(chat, ANN, "/upscale", reply_to=fox_photos[2])
    await telegram.wait_for(lambda: len(ok_calls(telegram, "sendMessage", operators.id)) == 3)
    telegram.send_text(chat, ANN, "/animate again", reply_to=fox_photos[3])
    draft = await animation_draft(telegram, chat.id, "🎬 Animating image 4")
    normal = draft.result["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    await telegram.wait_for_answer(telegram.press(chat, ANN, draft.result["message_id"], normal))
    await eventually(lambda: len(bot.tasks()) == 7 and bot.tasks()[6]["state"] == "delivered")
    tasks = bot.tasks()
    assert (tasks[6]["state"], tasks[6]["account"]) == ("delivered", "a")
    assert tasks[5]["state"] == "pending"  # the upscale, waiting for b
    clock.advance(FAST.outage_wait + 1)
    tasks = await bot.wait_until_settled(count=7)
    assert (tasks[5]["state"], tasks[5]["failure_kind"]) == ("reported", "unavailable")
    [elsewhere] = made(kie, "image-to-video")
    fox_urls = json.loads(fox["result_urls"])
    assert elsewhere.request["input"]["image_urls"] == [fox_urls[3]]
    assert kie_b.unknown_reads == kie.unknown_reads == 0
    # Operators heard of each outage once, and of a's return.
    texts = [c.result["text"] for c in ok_calls(telegram, "sendMessage", operators.id)]
    assert len(texts) == 3
    assert texts[2].startswith("⚠️ The b account is out of credits")

    # /balance lists both; /stats counts tasks per account.
    telegram.send_text(operators, OPERATOR, "/balance")
    balance = (await telegram.wait_for_call("sendMessage", operators.id, count=4))[-1]
    lines = balance.result["text"].splitlines()
    assert lines[1] == "🟢 a (kie): 1500 credits · in rotation, 0 running"
    assert lines[2].startswith("🔴 b (kie): 0 credits · out of rotation for ")


async def test_routing_by_capability_and_the_menu_of_the_whole_pool(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, tmp_path: Path
) -> None:
    videos = FakeGrokImagineApi(PROVIDER_KEY)
    await videos.start()
    try:
        # The video-only account first: images still work, on the kie account.
        providers = accounts_file(
            tmp_path,
            {
                "name": "videos",
                "provider": "grokimagineapi",
                "api_key": PROVIDER_KEY,
                "base_url": videos.url,
            },
            kie_account("kie-main", kie, max_concurrent=1),
        )
        bot = await start_bot(providers_file=providers)
        menu = telegram.calls_of("setMyCommands")[0].json("commands")
        assert [c["command"] for c in menu][:4] == ["imagine", "video", "animate", "upscale"]
        chat = telegram.private_chat(ANN)
        kie.scenario = Scenario(duration=60)  # kie stays busy with the image
        telegram.send_text(chat, ANN, "/imagine a harbour")
        await eventually(lambda: len(kie.created) == 1)
        # kie is full (cap 1): the video goes to the video-only account at once.
        telegram.send_text(chat, ANN, "/video the tide")
        await eventually(lambda: len(videos.created) == 1)
        kie.finish(kie.created[0])
        tasks = await bot.wait_until_settled(count=2)
        assert [(t["kind"], t["account"], t["state"]) for t in tasks] == [
            ("text_to_image", "kie-main", "delivered"),
            ("text_to_video", "videos", "delivered"),
        ]
    finally:
        await videos.stop()


async def test_a_create_whose_outcome_is_unknown_is_never_sent_again(
    telegram: FakeTelegram, kie: FakeKie, kie_b: FakeKie, start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot(
        providers_file=accounts_file(tmp_path, kie_account("a", kie), kie_account("b", kie_b))
    )
    # An answer without a task id: the task may exist upstream, billed. Neither a nor b is
    # asked again; the user gets the credits back.
    kie.fail_creates(200, "success")
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine once only")
    [task] = await bot.wait_until_settled()
    assert (task["state"], task["failure_kind"]) == ("reported", "interrupted")
    assert (kie.create_attempts, kie_b.create_attempts) == (1, 0)
    kinds = [r["kind"] for r in bot.rows("SELECT kind FROM ledger ORDER BY id")]
    assert kinds == ["reserve", "refund"]


# --- the accounts file ----------------------------------------------------------------------


def settings_with(**values: object) -> Settings:
    return Settings(_env_file=None, telegram_bot_token="1:x", **values)  # type: ignore[arg-type]


def test_without_a_file_the_old_settings_make_a_pool_of_one() -> None:
    [account] = load_accounts(
        settings_with(
            provider="apikley",
            provider_api_key="k-1",
            max_concurrent_tasks=7,
            max_tasks_per_hour=70,
        )
    )
    assert (account.name, account.provider.value) == ("apikley", "apikley")
    assert account.base == "https://api.apikley.ru"
    assert (account.max_concurrent, account.max_tasks_per_hour) == (7, 70)
    assert account.api_key == SecretStr("k-1")


def test_the_file_read_with_its_defaults(tmp_path: Path) -> None:
    path = accounts_file(
        tmp_path,
        {"name": "kie-main", "provider": "kie", "api_key": "s1"},
        {"name": "g5", "provider": "grok5imagine", "api_key": "s2", "max_concurrent": 10},
    )
    first, second = load_accounts(settings_with(providers_file=path))
    assert (first.base, first.max_concurrent, first.max_tasks_per_hour) == (
        "https://api.kie.ai",
        50,
        500,
    )
    assert (second.name, second.max_concurrent) == ("g5", 10)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (
            [{"name": "a", "provider": "kie"}],
            "account 1 (a): api_key missing",
        ),
        (
            [{"name": "a", "provider": "midjourney", "api_key": "sk-SECRET-1"}],
            "account 1 (a): provider: Input should be 'kie', 'apikley', 'grok5imagine' or "
            "'grokimagineapi'",
        ),
        (
            [
                {"name": "a", "provider": "kie", "api_key": "sk-SECRET-1"},
                {"name": "a", "provider": "kie", "api_key": "sk-SECRET-2"},
            ],
            "account 2 (a): the name 'a' is used twice",
        ),
        (
            [{"name": "a", "provider": "kie", "api_key": "sk-SECRET-1", "max_concurent": 3}],
            "account 1 (a): max_concurent is not a known key",
        ),
        ([], "no [[account]] entries"),
    ],
)
def test_a_bad_file_is_refused_in_one_line_without_secrets(
    tmp_path: Path, entries: list[dict[str, object]], problem: str
) -> None:
    path = accounts_file(tmp_path, *entries)
    with pytest.raises(AccountsError) as refused:
        read_accounts_file(path)
    assert str(refused.value) == f"PROVIDERS_FILE {path}: {problem}"
    assert "SECRET" not in str(refused.value)


def test_a_file_that_is_not_toml_or_not_there(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[[account]]\napi_key = "sk-SECRET-1\n')
    with pytest.raises(AccountsError, match=r"not valid TOML \(.*line 2") as refused:
        read_accounts_file(broken)
    assert "SECRET" not in str(refused.value)
    with pytest.raises(AccountsError, match="cannot be read"):
        read_accounts_file(tmp_path / "missing.toml")


def test_the_example_file_is_a_valid_pool() -> None:
    accounts = read_accounts_file(ROOT / "providers.example.toml")
    assert [a.name for a in accounts] == ["kie-main", "kie-spare", "apikley"]


def test_no_account_at_all_is_named_beside_the_other_problems() -> None:
    from pydantic import ValidationError

    from bot.settings import describe_settings_error

    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert describe_settings_error(refused.value) == (
        "Invalid settings: TELEGRAM_BOT_TOKEN (missing); PROVIDER_API_KEY (missing)"
    )
