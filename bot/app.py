"""Wiring: open the resources, build the PTB application, run until told to stop.

The lifecycle is driven by hand (PTB's `customwebhookbot` pattern) rather than by
`run_polling`, so the bot shares its event loop with whatever else the process serves.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot import catalog
from bot.catalog import Lang
from bot.engine import Engine, Timing
from bot.handlers import Handlers
from bot.logs import quiet_http_logs
from bot.media import MediaFetcher
from bot.providers import build_provider
from bot.settings import Settings
from storage.database import Database
from storage.tasks import TaskRepository

_log = logging.getLogger(__name__)

COMMANDS = ("imagine", "help")


def build_application(settings: Settings) -> Application:  # type: ignore[type-arg]
    base = settings.telegram_base
    return (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{base}/bot{{token}}")
        .base_file_url(f"{base}/file/bot{{token}}")
        # Stays under Telegram's flood limits and waits out a 429's retry_after.
        .rate_limiter(AIORateLimiter(max_retries=3))
        # One chat's slow update never holds up another chat's.
        .concurrent_updates(True)
        .build()
    )


async def register_commands(bot: Bot) -> None:
    """The command menu, per chat kind and language."""
    for scope in (BotCommandScopeAllPrivateChats(), BotCommandScopeAllGroupChats()):
        for lang in Lang:
            commands = [BotCommand(c, catalog.text(lang, f"command.{c}")) for c in COMMANDS]
            await bot.set_my_commands(
                commands, scope=scope, language_code=None if lang is Lang.EN else lang.value
            )


async def run(settings: Settings, *, stop: asyncio.Event, timing: Timing | None = None) -> None:
    """Run the bot until `stop` is set, then shut down leaving every task resumable."""
    quiet_http_logs()
    database = await Database.open(settings.database_path)
    tasks = TaskRepository(database)
    provider = build_provider(settings)
    media_client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
    application = build_application(settings)
    engine = Engine(
        bot=application.bot,
        tasks=tasks,
        provider=provider,
        media=MediaFetcher(media_client),
        timing=timing,
    )
    Handlers(engine=engine, tasks=tasks, provider_name=provider.name).register(application)
    try:
        async with application:
            await register_commands(application.bot)
            await application.start()
            assert application.updater is not None
            await application.updater.start_polling(
                allowed_updates=["message", "callback_query"], drop_pending_updates=False
            )
            await engine.start()
            _log.info("bot @%s is running", application.bot.username)
            await stop.wait()
            _log.info("stopping")
            await application.updater.stop()
            await engine.stop()
            await application.stop()
    finally:
        await engine.stop()
        await provider.aclose()
        await media_client.aclose()
        await database.close()
