"""Wiring: open the resources, build the PTB application, run until told to stop.

The lifecycle is driven by hand (PTB's `customwebhookbot` pattern) rather than by
`run_polling`, so the bot and its HTTP endpoint share one event loop, and shutdown goes in
the order that loses nothing: stop taking updates, let in-flight sends finish (every task
is in the database and resumes at the next start), then close the HTTP server and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

import httpx
from starlette.applications import Starlette
from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats
from telegram.constants import ParseMode
from telegram.error import NetworkError
from telegram.ext import Application, ApplicationBuilder, Defaults
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from bot.core.lifecycle import FINAL_STATES, TaskState
from bot.core.task import Task
from bot.engine.billing import Billing
from bot.engine.engine import Engine, Timing
from bot.engine.pool import Pool
from bot.engine.scheduler import Scheduler
from bot.ops.logs import protect_secrets, quiet_http_logs
from bot.ops.metrics import Metrics
from bot.providers import Capabilities, build_provider, load_accounts
from bot.settings import Settings
from bot.telegram import catalog, handlers
from bot.telegram.admin import AdminCommands
from bot.telegram.admins import ChatAdmins
from bot.telegram.alerts import OperatorAlerts
from bot.telegram.animate import Animations
from bot.telegram.catalog import Lang
from bot.telegram.chat_events import ChatEvents
from bot.telegram.chat_settings import SettingsMenu
from bot.telegram.delivery import Deliverer
from bot.telegram.flood import FloodControl, FloodLimits
from bot.telegram.guide import Guide
from bot.telegram.handover import ImageHandover
from bot.telegram.history import History
from bot.telegram.imagine import Imagine
from bot.telegram.inline import Inline
from bot.telegram.intake import Intake
from bot.telegram.media import MediaFetcher
from bot.telegram.permissions import Permissions
from bot.telegram.polling import PollingLeader
from bot.telegram.quota import Quota
from bot.telegram.results import ResultButtons
from bot.telegram.shop import Shop
from bot.telegram.task_chat import TelegramChat
from bot.web.routes import (
    TELEGRAM_PREFIX,
    WebDependencies,
    build_web_app,
    callback_url,
    start_server,
    stop_server,
)
from bot.web.signing import telegram_webhook_secret
from storage.accounts import AccountStates
from storage.chats import ChatRepository
from storage.database import Database
from storage.drafts import DraftRepository
from storage.ledger import LedgerRepository
from storage.payments import PaymentRepository
from storage.served_files import ServedFiles
from storage.stats import StatsRepository
from storage.tasks import TaskRepository
from storage.telegram_pace import TelegramPace
from storage.upstream_pace import UpstreamPace

_log = logging.getLogger(__name__)

# The command menu, in order, with each command's description in the catalog.
COMMANDS = {
    "imagine": "command.imagine",
    "video": "command.video",
    "animate": "command.animate",
    "upscale": "command.upscale",
    "cancel": "command.cancel",
    "history": "command.history",
    "quota": "command.quota",
    "buy": "command.buy",
    "settings": "command.settings",
    "help": "command.help",
    # Telegram asks a bot that takes payments to answer these two.
    "paysupport": "command.paysupport",
    "terms": "command.terms",
}
ALLOWED_UPDATES = [
    "message",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "pre_checkout_query",
    "inline_query",
    "chosen_inline_result",
]


def build_application(settings: Settings, flood: FloodControl) -> Application:  # type: ignore[type-arg]
    base = settings.telegram_base
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{base}/bot{{token}}")
        .base_file_url(f"{base}/file/bot{{token}}")
        # Stays under Telegram's flood limits and waits out a 429's retry_after.
        .rate_limiter(flood)
        # Every message the bot writes is HTML (user text in it escaped): said once, here.
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        # One chat's slow update never holds up another chat's.
        .concurrent_updates(True)
    )
    if settings.telegram_webhook:
        builder = builder.updater(None)  # updates arrive on our own HTTP endpoint
    return builder.build()


def offered_commands(can: Capabilities, *, shop_open: bool = False) -> list[str]:
    """The commands this upstream (and the shop, if open) make possible, in menu order."""
    offered = {
        "imagine": can.text_to_image,
        "video": can.text_to_video,
        "animate": can.image_to_video,
        "upscale": can.upscale,
        "buy": shop_open,
        "paysupport": shop_open,
        "terms": shop_open,
    }
    return [command for command in COMMANDS if offered.get(command, True)]


async def register_commands(bot: Bot, can: Capabilities, *, shop_open: bool = False) -> None:
    """The command menu, per chat kind and language."""
    for scope in (BotCommandScopeAllPrivateChats(), BotCommandScopeAllGroupChats()):
        for lang in Lang:
            commands = [
                BotCommand(c, catalog.plain(lang, COMMANDS[c]))
                for c in offered_commands(can, shop_open=shop_open)
            ]
            await bot.set_my_commands(
                commands, scope=scope, language_code=None if lang is Lang.EN else lang.value
            )


async def reach_telegram(
    application: Application,  # type: ignore[type-arg]
    where: str,
    stop: asyncio.Event,
    *,
    first_wait: float = 1.0,
    longest_wait: float = 60.0,
) -> bool:
    """Introduce the bot to Telegram (PTB's `initialize`: its getMe), trying again with
    exponential backoff, one log line a try, while Telegram cannot be reached (a container
    up before its network, a hiccup at deploy time). A token Telegram refuses raises
    `InvalidToken` at once. False if `stop` was set before Telegram answered."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(NetworkError),
        wait=wait_exponential_jitter(initial=first_wait, max=longest_wait, jitter=first_wait),
        stop=lambda _: stop.is_set(),
        sleep=lambda seconds: _until(stop, seconds),
        before_sleep=lambda state: _log.warning(
            "Telegram (%s) cannot be reached: %s; trying again in %.0f s",
            where,
            state.outcome.exception() if state.outcome else "?",
            state.upcoming_sleep,
        ),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                await application.initialize()
    except NetworkError:
        return False  # told to stop while Telegram was still away
    return not stop.is_set()


async def _until(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to its end on uvloop where it is installed (a dependency everywhere but
    Windows): its loop and sockets cost the bot a good part less CPU than asyncio's own
    under load. Elsewhere, asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@dataclass(eq=False)
class Components:
    """The bot, built (`build`) and not yet started: what `run` starts, runs and stops, in
    that order."""

    settings: Settings
    database: Database
    pool: Pool
    engine: Engine
    flood: FloodControl
    application: Application  # type: ignore[type-arg]
    shop: Shop
    chats: ChatRepository
    admins: ChatAdmins
    media_client: httpx.AsyncClient
    web: Starlette
    webhook_secret: str | None  # set: Telegram's updates come by webhook
    taking_updates: asyncio.Event
    leader: list[PollingLeader]  # the polling leader, once `run` polls

    async def close(self) -> None:
        """What `build` opened: the upstream clients, the media client, the database."""
        await self.pool.aclose()
        await self.media_client.aclose()
        await self.database.close()


async def build(
    settings: Settings,
    *,
    timing: Timing | None = None,
    clock: Callable[[], float] = time.time,
    flood_limits: FloodLimits | None = None,
) -> Components:
    """Every component of the bot, wired, nothing started: the database opened (its schema
    brought up to date), the upstream accounts' pool, the engine and its chat port, every
    feature's handlers on PTB's application, the HTTP endpoint's app.

    `clock` tells the UTC day for credits and times task claims (tests move it across
    midnight, and past a claim's lease); `timing` and `flood_limits` default to
    production's clocks and Telegram's limits (tests scale them)."""
    quiet_http_logs()
    protect_secrets(settings.secrets)
    accounts = load_accounts(settings)  # `python -m bot` has checked it: one line if wrong
    protect_secrets([secret for account in accounts for secret in account.secrets])
    if timing is None:
        defaults = Timing()
        timing = replace(
            defaults,
            poll=replace(defaults.poll, timeout=settings.task_timeout),
            callback_net=replace(defaults.callback_net, timeout=settings.task_timeout),
            lease=settings.task_lease,
            outage_wait=settings.outage_wait,
        )
    metrics = Metrics()
    database = await Database.open(settings.database, pool_size=settings.database_pool_size)
    tasks = TaskRepository(database)
    chats = ChatRepository(database)
    pool = Pool(
        [(account, build_provider(account)) for account in accounts],
        # An account's state moves as its slots are given and freed: those statements go
        # ahead of the database's line (storage/turns.py), as the slots' own records do.
        states=AccountStates(database.ahead_of_the_line()),
        breaker=timing.breaker,
        clock=clock,
    )
    media_client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
    # Replicas on PostgreSQL share Telegram's limits through the database.
    shared_pace = TelegramPace(database) if database.dialect == "postgresql" else None
    flood = FloodControl(metrics, max_retries=3, limits=flood_limits, shared=shared_pace)
    application = build_application(settings, flood)
    public = settings.public_base
    alerts = OperatorAlerts(application.bot, settings.admin_user_ids)

    def task_callback_url(task: Task) -> str:
        assert public is not None
        return callback_url(public, task)

    deliverer = Deliverer(application.bot, MediaFetcher(media_client))
    served_files = ServedFiles(database)
    handover = ImageHandover(
        bot=application.bot, pool=pool, served_files=served_files, public_url=public
    )
    engine = Engine(
        chat=TelegramChat(application.bot, deliverer, flood),
        tasks=tasks,
        pool=pool,
        timing=timing,
        callback_url=task_callback_url if public else None,
        alerts=alerts,
        metrics=metrics,
        scheduler=Scheduler(pool, outage_wait=timing.outage_wait),
        on_chat_migrated=chats.migrate,
        owner=settings.instance_id,
        line_max_wait=settings.line_max_wait,
        clock=clock,
        image_from_telegram=handover.from_telegram,
        # Replicas on PostgreSQL share each account's pace of status reads too.
        status_pace=UpstreamPace(database) if database.dialect == "postgresql" else None,
        shared_line=database.dialect == "postgresql",
        max_held=settings.max_tasks_held,
    )
    ledger = LedgerRepository(database)
    billing = Billing(settings=settings, chats=chats, ledger=ledger, clock=clock)
    payments = PaymentRepository(database)
    shop = Shop(
        packs=settings.star_packs,
        payload_key=settings.payload_key,
        payments=payments,
        billing=billing,
        alerts=alerts,
        paysupport_text=settings.paysupport_text,
        terms_text=settings.terms_text,
        clock=clock,
    )

    intake = Intake(billing=billing, engine=engine, shop_open=shop.open)
    admins = ChatAdmins(clock=clock, tell_everyone=chats.admins_changed)
    permissions = Permissions(admins=admins, chats=chats, operator_ids=settings.admin_user_ids)
    animations = Animations(
        drafts=DraftRepository(database),
        chats=chats,
        pool=pool,
        handover=handover,
        spicy_allowed=settings.allow_spicy,
        intake=intake,
        tasks=tasks,
    )
    settings_menu = SettingsMenu(
        chats=chats,
        permissions=permissions,
        spicy_allowed=settings.allow_spicy,
        default_user_cap=settings.group_user_daily_credits,
    )
    history = History(tasks=tasks, deliverer=deliverer, capabilities=pool.capabilities)
    # The features, in the order their handlers are tried (inline's /start t<task> before
    # the guide's /start).
    handlers.register(
        application,
        [
            Inline(
                tasks=tasks,
                intake=intake,
                deliverer=deliverer,
                history=history,
                capabilities=pool.capabilities,
                cost=billing.costs.text_to_image,
            ),
            Guide(capabilities=pool.capabilities, shop_open=shop.open),
            Imagine(
                engine=engine,
                tasks=tasks,
                chats=chats,
                intake=intake,
                permissions=permissions,
                capabilities=pool.capabilities,
            ),
            animations,
            ResultButtons(
                tasks=tasks,
                intake=intake,
                animations=animations,
                permissions=permissions,
                capabilities=pool.capabilities,
            ),
            Quota(billing=billing, payments=payments),
            settings_menu,
            history,
            shop,
            ChatEvents(chats=chats, admins=admins),
            AdminCommands(
                operator_ids=settings.admin_user_ids,
                billing=billing,
                ledger=ledger,
                chats=chats,
                stats=StatsRepository(database),
                payments=payments,
                pool=pool,
            ),
        ],
    )

    webhook_secret = None
    if settings.telegram_webhook:
        webhook_secret = telegram_webhook_secret(settings.telegram_bot_token.get_secret_value())
    if webhook_secret:
        protect_secrets([webhook_secret])
    taking_updates = asyncio.Event()
    leader: list[PollingLeader] = []  # set by `run` once it polls (none in webhook mode)

    async def metrics_text() -> bytes:
        unfinished = await tasks.count_unfinished()
        for state in TaskState:
            if state not in FINAL_STATES:
                metrics.tasks_unfinished.labels(state).set(unfinished.get(state, 0))
        metrics.queue_length.set(unfinished.get(TaskState.PENDING, 0))
        metrics.tasks_in_flight.set(engine.in_flight)
        now = pool.now()
        for account in pool.accounts:
            metrics.account_in_rotation.labels(account.name).set(account.in_rotation(now))
            metrics.account_running.labels(account.name).set(len(account.running))
        return metrics.render()

    def callback_task_id(task: Task, body: object) -> str | None:
        account = pool.find(task.account)
        return account.provider.callback_task_id(body) if account else None

    def hmac_key(task: Task) -> str | None:
        account = pool.find(task.account)
        key = account.config.webhook_hmac_key if account else None
        return key.get_secret_value() if key else None

    # Always served: /healthz and /metrics for operators; callbacks only with PUBLIC_URL.
    web = build_web_app(
        WebDependencies(
            tasks=tasks.ahead_of_the_line(),
            served_files=served_files,
            callback_task_id=callback_task_id,
            on_callback=engine.on_callback,
            tasks_in_flight=lambda: engine.in_flight,
            database_ok=database.ping,
            metrics_text=metrics_text,
            hmac_key=hmac_key,
            telegram=application if webhook_secret else None,
            telegram_secret=webhook_secret,
            taking_updates=taking_updates.is_set,
            replica=settings.instance_id,
            leading=lambda: leader[0].leading if leader else None,
        )
    )
    return Components(
        settings=settings,
        database=database,
        pool=pool,
        engine=engine,
        flood=flood,
        application=application,
        shop=shop,
        chats=chats,
        admins=admins,
        media_client=media_client,
        web=web,
        webhook_secret=webhook_secret,
        taking_updates=taking_updates,
        leader=leader,
    )


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event,
    timing: Timing | None = None,
    clock: Callable[[], float] = time.time,
    flood_limits: FloodLimits | None = None,
) -> None:
    """Run the bot until `stop` is set, then shut down leaving every task resumable: build
    it (`build`), reach Telegram, start the HTTP endpoint, take updates and drive tasks;
    once told to stop, stop taking updates, let sends on their way finish, and close."""
    bot = await build(settings, timing=timing, clock=clock, flood_limits=flood_limits)
    application, engine, database = bot.application, bot.engine, bot.database
    shop, chats, admins, flood = bot.shop, bot.chats, bot.admins, bot.flood
    webhook_secret, taking_updates, web = bot.webhook_secret, bot.taking_updates, bot.web
    public = settings.public_base
    polling: PollingLeader | None = None
    server = None
    reached = False
    try:
        reached = await reach_telegram(application, settings.telegram_base, stop)
    finally:
        if not reached:  # told to stop first, or the token was refused
            await application.bot.shutdown()  # PTB's HTTP clients, opened by the tries
            await bot.close()
    if not reached:
        return
    try:
        async with application:
            await register_commands(application.bot, bot.pool.capabilities, shop_open=shop.open)
            # Before updates: one receipt per payment. One replica at a time looks (another
            # starting meanwhile skips it; the next start looks again).
            recovery = database.leadership("star-recovery")
            if await recovery.try_acquire():
                try:
                    await shop.recover(application.bot)
                finally:
                    await recovery.release()
            server = await start_server(web, settings.http_host, settings.http_port)
            await application.start()
            taking_updates.set()
            if webhook_secret:
                await application.bot.set_webhook(
                    f"{public}{TELEGRAM_PREFIX}/{webhook_secret}",
                    secret_token=webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                    drop_pending_updates=False,
                )
            else:
                assert application.updater is not None
                polling = PollingLeader(
                    application.updater,
                    database.leadership("polling"),
                    allowed_updates=ALLOWED_UPDATES,
                )
                bot.leader.append(polling)
                await polling.start()
            await chats.on_admins_changed(admins.forget)
            await engine.start()
            mode = "webhook" if webhook_secret else "polling"
            results = "callbacks" if public else "polling"
            _log.info(
                "bot @%s is running: updates by %s, results by %s",
                application.bot.username,
                mode,
                results,
            )
            await stop.wait()
            _log.info("stopping")
            # 1. No new updates: Telegram keeps what it could not deliver for the next start.
            taking_updates.clear()
            if polling is not None:
                await polling.stop()
            # 2. In-flight work: sends on their way finish, the rest waits in the database; sends
            # and replies still waiting for their turn under the flood limits are dropped.
            await engine.stop(drop_queued=flood.stop_waiting)
            await application.stop()
    finally:
        if polling is not None:
            await polling.stop()
        await engine.stop()
        if server is not None:
            await stop_server(*server)
        await bot.close()
