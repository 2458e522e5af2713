"""The one way a new task comes in, from a command, a button or an animation: built here
(`from_prompt`, `again`, `upscale_of`, `animation`), then `submit`: reserve its cost and
record it (one transaction), hand it to the engine, and return; or, when the chat cannot
pay for it, reply saying why (balance, cost, time to renewal) and create nothing; the same
when the line is longer than LINE_MAX_WAIT (with the expected wait)."""

from __future__ import annotations

import asyncio

from telegram import Message

from bot.core.lifecycle import AnimateMode, TaskKind
from bot.core.line import LineTooLong
from bot.core.parsing import ImagineRequest
from bot.core.quota import Refusal, next_renewal
from bot.core.task import NewTask, Task
from bot.engine.billing import Billing
from bot.engine.engine import Engine
from bot.telegram.catalog import Lang, Markup, text
from bot.telegram.replies import duration_text
from storage.drafts import Draft

# How many new tasks are recorded at once. Updates are handled concurrently, and a burst
# of hundreds of commands would otherwise put hundreds of transactions in the database's
# queue at once, in front of the work of tasks already running (a callback's read, a result
# recorded, a freed slot's next create): a bench of 1,500 commands at once saw slots
# stand empty 1.6 s (p90) after their task ended, and 0.4 s with this.
RECORDING_AT_ONCE = 8


class Intake:
    def __init__(self, *, billing: Billing, engine: Engine, shop_open: bool = False) -> None:
        self._billing = billing
        self._engine = engine
        self._shop_open = shop_open  # a chat out of credits is told about /buy
        self._recording = asyncio.Semaphore(RECORDING_AT_ONCE)

    async def submit(self, new: NewTask, answer_to: Message) -> bool:
        """True if the task was recorded and handed over; False if it was refused (and
        `answer_to` was answered with the reason)."""
        result, now = await self.record(new)
        if isinstance(result, Refusal | LineTooLong):
            await answer_to.reply_text(
                refusal_text(Lang(new.lang), result, now, shop_open=self._shop_open),
                do_quote=True,
            )
            return False
        return True

    @property
    def shop_open(self) -> bool:
        return self._shop_open

    async def record(self, new: NewTask) -> tuple[Task | Refusal | LineTooLong, float]:
        """Charge, record and hand over `new`, or refuse it unrecorded (the chat cannot pay,
        or the line is too long); and the moment it was charged at (for a refusal's "renews
        in")."""
        too_long = await self._engine.line_refusal(new.kind)
        if too_long is not None:
            return too_long, 0.0
        async with self._recording:  # a refusal's reply waits outside: it may wait its pace
            charge = await self._billing.charge(new.kind, new.chat_id, new.chat_type)
            return await self._engine.submit(new, charge), charge.now

    # --- the tasks there are ------------------------------------------------------------------

    def from_prompt(
        self, kind: TaskKind, parsed: ImagineRequest, message: Message, user_id: int, lang: Lang
    ) -> NewTask:
        """/imagine or /video with its prompt and ratio."""
        return NewTask(
            kind=kind,
            chat_id=message.chat_id,
            chat_type=message.chat.type,
            user_id=user_id,
            lang=lang,
            prompt=parsed.prompt,
            aspect_ratio=parsed.aspect_ratio,
            message_thread_id=message.message_thread_id if message.is_topic_message else None,
            request_message_id=message.message_id,
            # Delivered again (a webhook a killed replica never answered): the same task.
            request_key=f"{message.chat_id}:{message.message_id}",
        )

    def again(self, task: Task, user_id: int, lang: Lang, answer_to: int) -> NewTask:
        """🔁: the same request again, a new task (paid like any other)."""
        return NewTask(
            kind=task.kind,
            chat_id=task.chat_id,
            chat_type=task.chat_type,
            user_id=user_id,
            lang=lang,
            prompt=task.prompt,
            aspect_ratio=task.aspect_ratio,
            message_thread_id=task.message_thread_id,
            request_message_id=answer_to,
            parent_task_id=task.id,
            mode=task.mode,
            source_task_id=task.source_task_id,
            source_index=task.source_index,
            image_url=task.image_url,
            image_file_id=task.image_file_id,
        )

    def upscale_of(self, source: Task, user_id: int, lang: Lang, answer_to: int) -> NewTask:
        return NewTask(
            kind=TaskKind.UPSCALE,
            chat_id=source.chat_id,
            chat_type=source.chat_type,
            user_id=user_id,
            lang=lang,
            prompt=source.prompt,
            aspect_ratio="",
            message_thread_id=source.message_thread_id,
            request_message_id=answer_to,
            parent_task_id=source.id,
            source_task_id=source.id,
        )

    def animation(self, draft: Draft) -> NewTask:
        """A completed animation draft: one of our images, or the user's own photo."""
        return NewTask(
            kind=TaskKind.IMAGE_TO_VIDEO,
            chat_id=draft.chat_id,
            chat_type=draft.chat_type,
            user_id=draft.user_id,
            lang=draft.lang,
            prompt=draft.prompt or "",
            aspect_ratio="",
            message_thread_id=draft.message_thread_id,
            request_message_id=draft.message_id,
            mode=draft.mode or AnimateMode.NORMAL,
            source_task_id=draft.source_task_id,
            source_index=draft.source_index,
            image_url=draft.image_url,
            image_file_id=draft.image_file_id,
        )


def refusal_text(
    lang: Lang, refusal: Refusal | LineTooLong, now: float, *, shop_open: bool = False
) -> str:
    if isinstance(refusal, LineTooLong):
        return text(lang, "line.too_long", wait=duration_text(lang, refusal.wait))
    balance = refusal.balance
    renews_in = duration_text(lang, next_renewal(now) - now)
    if refusal.reason == "user":
        return text(
            lang,
            "quota.user_cap_reached",
            user_left=balance.user_left,
            user_cap=balance.user_cap,
            cost=refusal.cost,
            renews_in=renews_in,
        )
    return text(
        lang,
        "quota.out_of_credits",
        cost=refusal.cost,
        available=balance.available,
        daily_left=balance.daily_left,
        daily_limit=balance.daily_limit,
        granted=balance.granted,
        purchased=balance.purchased,
        renews_in=renews_in,
        buy_hint=Markup(text(lang, "shop.buy_hint") if shop_open else ""),
    )
