"""Telegram flood control: PTB's AIORateLimiter (the per-chat, per-group and overall limits,
and waiting out a 429's retry_after), plus two things the bot needs from it: errors counted
for /metrics, and a sense of how backed up it is, so that best-effort calls (status edits,
chat actions) give way to results."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter

from bot.metrics import Metrics

# More Bot API calls than this queued or in flight: skip what can be skipped.
BUSY_AT = 20


class FloodControl(AIORateLimiter):
    def __init__(self, metrics: Metrics, *, max_retries: int, busy_at: int = BUSY_AT) -> None:
        super().__init__(max_retries=max_retries)
        self._metrics = metrics
        self._busy_at = busy_at
        self.pending = 0  # calls inside the limiter: waiting for their turn, or in flight

    @property
    def busy(self) -> bool:
        return self.pending >= self._busy_at

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        self.pending += 1
        try:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        except TelegramError as error:
            self._metrics.telegram_errors.labels(type(error).__name__).inc()
            raise
        finally:
            self.pending -= 1
