"""`python -m bot` as an operator runs it: settings errors, start, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from fakes.kie import HELD, FakeKie
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import BOT_TOKEN, PROVIDER_KEY, StartBot, eventually, free_port, public_endpoint

ROOT = Path(__file__).resolve().parent.parent


async def run_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    prefixes = ("TELEGRAM_", "PROVIDER_", "PROVIDERS_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    clean["PYTHONPATH"] = str(ROOT)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env={**clean, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_missing_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    process = await run_bot({"PROVIDER_API_KEY": "super-secret-key-1"}, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert lines == ["Invalid settings: TELEGRAM_BOT_TOKEN (missing)"]


async def test_malformed_setting_is_named_and_secrets_are_not_printed(tmp_path: Path) -> None:
    process = await run_bot(
        {
            "TELEGRAM_BOT_TOKEN": "123:secret-token-value",
            "PROVIDER_API_KEY": "super-secret-key-2",
            "PROVIDER": "midjourney",
            "HTTP_PORT": "eighty",
        },
        tmp_path,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    text = stderr.decode()
    assert process.returncode == 2
    assert len(text.strip().splitlines()) == 1
    assert "PROVIDER (" in text
    assert "HTTP_PORT (" in text
    assert "secret" not in text


async def test_a_bad_providers_file_stops_start_up_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(
        '[[account]]\nname = "a"\nprovider = "kie"\napi_key = "sk-SECRET-1"\n'
        '[[account]]\nname = "a"\nprovider = "kie"\napi_key = "sk-SECRET-2"\n'
    )
    process = await run_bot({"TELEGRAM_BOT_TOKEN": "1:x", "PROVIDERS_FILE": str(path)}, tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode().strip().splitlines() == [
        f"PROVIDERS_FILE {path}: account 2 (a): the name 'a' is used twice"
    ]


async def read_line_with(process: asyncio.subprocess.Process, words: str) -> str:
    """The next line of the process's stderr that contains `words`."""
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, "the process ended before saying it"
        if words in line:
            return line


@pytest.mark.sqlite_only
async def test_a_start_without_telegram_says_so_in_one_line_and_keeps_trying(
    kie: FakeKie, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there yet: Telegram cannot be reached
    process = await run_bot(
        {
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_URL": f"http://127.0.0.1:{port}",
            "PROVIDER_API_KEY": PROVIDER_KEY,
            "PROVIDER_BASE_URL": kie.url,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
        },
        tmp_path,
    )
    telegram = FakeTelegram(BOT_TOKEN)
    try:
        first = await read_line_with(process, "cannot be reached")
        assert f"Telegram (http://127.0.0.1:{port}) cannot be reached: " in first
        assert "trying again in" in first
        await telegram.start(port)  # Telegram answers again: the bot starts by itself
        await read_line_with(process, "is running")
        await telegram.wait_for(lambda: telegram.polls > 0)
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 15)
        await telegram.stop()
    assert process.returncode == 0
    assert "Traceback" not in first + rest.decode()
    assert BOT_TOKEN not in first + rest.decode()


@pytest.mark.sqlite_only
async def test_a_token_telegram_refuses_stops_the_start_in_one_line(
    telegram: FakeTelegram, kie: FakeKie, tmp_path: Path
) -> None:
    process = await run_bot(
        {
            "TELEGRAM_BOT_TOKEN": "123456789:AAH-a-token-telegram-does-not-know",
            "TELEGRAM_API_URL": telegram.url,
            "PROVIDER_API_KEY": PROVIDER_KEY,
            "PROVIDER_BASE_URL": kie.url,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
        },
        tmp_path,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    log = stderr.decode()
    assert process.returncode == 2
    assert "Traceback" not in log
    assert "a-token-telegram-does-not-know" not in log
    assert log.strip().splitlines()[-1] == (
        "Telegram refused the bot token (TELEGRAM_BOT_TOKEN): check it with @BotFather (/token)"
    )


@pytest.mark.sqlite_only
async def test_runs_from_a_dotenv_file_and_stops_on_sigterm(
    telegram: FakeTelegram, kie: FakeKie, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        f"TELEGRAM_BOT_TOKEN={BOT_TOKEN}\n"
        f"TELEGRAM_API_URL={telegram.url}\n"
        f"PROVIDER_API_KEY={PROVIDER_KEY}\n"
        f"PROVIDER_BASE_URL={kie.url}\n"
        f"HTTP_HOST=127.0.0.1\nHTTP_PORT={free_port()}\n"
    )
    process = await run_bot({}, tmp_path)
    try:
        await telegram.wait_for(lambda: telegram.polls > 0)
        ann = FakeUser(1001, "Ann", "en")
        chat = telegram.private_chat(ann)
        telegram.send_text(chat, ann, "/imagine a red fox in snow --ar 3:2")
        # Production clocks: the first status read comes about two seconds in.
        await telegram.wait_for(lambda: telegram.calls_of("deleteMessage"))
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
    log = stderr.decode()
    assert process.returncode == 0, log
    assert BOT_TOKEN not in log
    assert PROVIDER_KEY not in log
    assert "bot @imagine_test_bot is running" in log
    database = sqlite3.connect(tmp_path / "data" / "imagine-bot.sqlite3")  # the default path
    assert database.execute("SELECT state FROM tasks").fetchall() == [("delivered",)]
    database.close()


@pytest.mark.sqlite_only
async def test_sigterm_with_tasks_in_flight_exits_fast_and_loses_nothing(
    telegram: FakeTelegram, kie: FakeKie, tmp_path: Path, start_bot: StartBot
) -> None:
    kie.scenario = HELD  # running upstream until the test ends them
    endpoint = public_endpoint()
    database = tmp_path / "bot.sqlite3"
    process = await run_bot(
        {
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_URL": telegram.url,
            "PROVIDER_API_KEY": PROVIDER_KEY,
            "PROVIDER_BASE_URL": kie.url,
            "PUBLIC_URL": endpoint["public_url"],
            "HTTP_HOST": endpoint["http_host"],
            "HTTP_PORT": str(endpoint["http_port"]),
            "DATABASE_PATH": str(database),
            "LOG_FORMAT": "json",
        },
        tmp_path,
    )
    await telegram.wait_for(lambda: telegram.polls > 0)
    users = [FakeUser(2000 + i, f"u{i}", "en") for i in range(3)]
    for user in users:
        telegram.send_text(telegram.private_chat(user), user, f"/imagine in flight {user.id}")
    await eventually(lambda: len(kie.created) == 3)

    process.send_signal(signal.SIGTERM)
    # Exits on its own (a create or a send on its way gets 5 s of grace): no kill needed.
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    # LOG_FORMAT=json: every line an object; a task's lines carry its task, chat, account
    # (empty while it waits for its turn).
    lines = [json.loads(line) for line in stderr.decode().splitlines()]
    task_lines = [line for line in lines if "task_id" in line]
    assert task_lines
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert {(line["chat_id"], line["account"]) for line in task_lines} <= {
        (user.id, account) for user in users for account in ("kie", "")
    }
    handed_back = sqlite3.connect(database)
    assert handed_back.execute("SELECT state FROM tasks").fetchall() == [("running",)] * 3
    handed_back.close()

    bot = await start_bot(database_path=database, **endpoint)
    for task in kie.created:
        kie.finish(task)  # their callbacks reach the bot that took them back
    tasks = await bot.wait_until_settled(count=3)
    assert [t["state"] for t in tasks] == ["delivered"] * 3
    assert len(kie.created) == 3
    assert len([c for c in telegram.calls_of("sendMediaGroup") if c.ok]) == 3


def test_env_example_and_the_docs_list_every_setting() -> None:
    from bot.settings import Settings, settings_table

    fields = {name.upper() for name in Settings.model_fields}
    example = set(re.findall(r"^#?\s*([A-Z][A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert example == fields
    # The page's table is the one the code makes (scripts/docs writes it): it cannot drift.
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert settings_table() in page, "docs/configuration.md is stale: run scripts/docs"
    assert all(Settings.model_fields[name].description for name in Settings.model_fields)
