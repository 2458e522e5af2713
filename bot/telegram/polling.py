"""Polling mode with several replicas: exactly one of them calls `getUpdates` (Telegram
allows one caller per bot), chosen through the database. Every replica tries to take the
lead every couple of seconds; the one holding it polls, and when it dies (its database
connection closes with it) another takes over at its next try. With SQLite there is one
process, and it leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from telegram.ext import Updater

from storage.database import Leadership

_log = logging.getLogger(__name__)


class PollingLeader:
    def __init__(
        self,
        updater: Updater,
        leadership: Leadership,
        *,
        allowed_updates: Sequence[str],
        every: float = 2.0,
    ) -> None:
        self._updater = updater
        self._leadership = leadership
        self._allowed_updates = list(allowed_updates)
        self._every = every
        self._loop: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self._updater.running

    async def start(self) -> None:
        """Try once now (with SQLite, or the first replica up, polling starts here), then
        every `every` seconds in the background."""
        await self._try()
        self._loop = asyncio.create_task(self._keep_trying(), name="polling-leader")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._updater.running:
            await self._updater.stop()
        await self._leadership.release()

    async def _keep_trying(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self._try()
            except Exception:
                _log.exception("polling leadership: trying again")

    async def _try(self) -> None:
        held = await self._leadership.try_acquire()
        if held and not self._updater.running:
            _log.info("this replica leads: polling Telegram for updates")
            await self._updater.start_polling(
                allowed_updates=self._allowed_updates, drop_pending_updates=False
            )
        elif not held and self._updater.running:
            # Polling stops first, then the lead is let go: two replicas never poll at once.
            _log.warning("this replica lost the lead (database connection): polling stops")
            await self._updater.stop()
            await self._leadership.release()
