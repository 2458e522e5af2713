"""What operators rely on: metrics, health, the stats chart, backups, a busy database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import httpx
import pytest

from fakes.kie import FakeKie, Scenario
from fakes.telegram import FakeTelegram, FakeUser
from tests.conftest import RunningBot, StartBot, eventually

ROOT = Path(__file__).resolve().parent.parent
ANN = FakeUser(1001, "Ann", "en")
OPERATOR = FakeUser(4242, "Operator", "en")


def metric(text: str, name: str) -> float:
    """The value of one sample line (`name` with its labels, as Prometheus prints it)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} in:\n{text}")


async def scrape(bot: RunningBot) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(bot.http_url("/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_move_after_tasks(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    before = await scrape(bot)
    assert (
        metric(before, 'imagine_tasks_created_total{kind="text_to_image"}') == 0.0
        if ('imagine_tasks_created_total{kind="text_to_image"}' in before)
        else True
    )
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine counted")
    await bot.wait_until_settled(count=1)
    kie.scenario = Scenario(outcome="fail", fail_msg="nope")
    telegram.send_text(chat, ANN, "/imagine failing")
    await bot.wait_until_settled(count=2)
    telegram.fail_next("sendMessage", 400, "Bad Request: chat not found")
    telegram.send_text(chat, ANN, "/help")
    await telegram.wait_for(lambda: any(not c.ok for c in telegram.calls_of("sendMessage")))

    text = await scrape(bot)
    assert metric(text, 'imagine_tasks_created_total{kind="text_to_image"}') == 2
    assert (
        metric(text, 'imagine_tasks_finished_total{kind="text_to_image",outcome="delivered"}') == 1
    )
    assert metric(text, 'imagine_tasks_finished_total{kind="text_to_image",outcome="failed"}') == 1
    assert metric(text, 'imagine_tasks_failed_total{reason="generation"}') == 1
    assert metric(text, "imagine_credits_refunded_total") == 5
    assert metric(text, 'imagine_upstream_status_requests_total{account="kie"}') >= 2
    assert (
        metric(text, 'imagine_upstream_request_seconds_count{account="kie",operation="create"}')
        == 2
    )
    assert metric(text, 'imagine_delivery_seconds_count{kind="text_to_image"}') == 1
    assert metric(text, 'imagine_telegram_errors_total{kind="BadRequest"}') == 1
    assert metric(text, "imagine_queue_length") == 0
    assert metric(text, "imagine_tasks_in_flight") == 0


async def test_gauges_show_work_in_progress(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    kie.scenario = Scenario(duration=30)
    bot = await start_bot()
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine slow")
    await eventually(lambda: bot.tasks() and bot.tasks()[0]["state"] == "running")
    text = await scrape(bot)
    assert metric(text, 'imagine_tasks_unfinished{state="running"}') == 1
    assert metric(text, "imagine_tasks_in_flight") == 1


@pytest.mark.sqlite_only
async def test_healthz_fails_while_the_database_is_unreachable(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(bot.http_url("/healthz"))).status_code == 200
        locker = sqlite3.connect(bot.settings.database_path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # what a stuck external writer does
        try:
            response = await client.get(bot.http_url("/healthz"))
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert response.status_code == 503
        assert response.json()["database"] is False
        assert (await client.get(bot.http_url("/healthz"))).status_code == 200


@pytest.mark.sqlite_only
async def test_a_briefly_locked_database_delays_but_loses_nothing(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot()
    chat = telegram.private_chat(ANN)
    locker = sqlite3.connect(bot.settings.database_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    telegram.send_text(chat, ANN, "/imagine while locked")
    await asyncio.sleep(1.0)
    locker.execute("ROLLBACK")
    locker.close()
    [task] = await bot.wait_until_settled()
    assert task["state"] == "delivered"
    assert not bot.task.done()  # the bot kept running


def png_chunks(content: bytes) -> dict[bytes, list[bytes]]:
    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    chunks: dict[bytes, list[bytes]] = {}
    position = 8
    while position < len(content):
        (length,) = struct.unpack(">I", content[position : position + 4])
        kind = content[position + 4 : position + 8]
        data = content[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", content[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + data) & 0xFFFFFFFF == crc
        chunks.setdefault(kind, []).append(data)
        position += 12 + length
    assert kind == b"IEND"
    return chunks


async def test_stats_chart_is_a_png_of_thirty_days(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot
) -> None:
    bot = await start_bot(admin_user_ids=str(OPERATOR.id))
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine for the chart")
    await bot.wait_until_settled()
    admin = telegram.private_chat(OPERATOR)
    telegram.send_text(admin, OPERATOR, "/stats")
    [photo] = await telegram.wait_for_call("sendPhoto", admin.id)
    content = telegram.file_content(photo.result["photo"][0]["file_id"])
    chunks = png_chunks(content)
    width, height = struct.unpack(">II", chunks[b"IHDR"][0][:8])
    assert (width, height) == (900, 400)
    texts = dict(chunk.split(b"\x00", 1) for chunk in chunks[b"tEXt"])
    days = json.loads(texts[b"Description"])["days"]
    assert len(days) == 30
    assert days[-1] == sorted(days)[-1]
    assert days == sorted(days)


@pytest.mark.sqlite_only
async def test_online_backup_of_a_running_bot(
    telegram: FakeTelegram, kie: FakeKie, start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot()
    chat = telegram.private_chat(ANN)
    telegram.send_text(chat, ANN, "/imagine keep me")
    await bot.wait_until_settled()
    target = tmp_path / "backups" / "copy.sqlite3"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "storage.backup", str(bot.settings.database_path), str(target)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT prompt, state FROM tasks").fetchall() == [("keep me", "delivered")]
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copy.close()
