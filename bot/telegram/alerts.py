"""Telling the operators, once, what only they can fix (the upstream account ran dry)."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from bot.core.catalog import Lang, text

_log = logging.getLogger(__name__)


class OperatorAlerts:
    def __init__(self, bot: Bot, operator_ids: frozenset[int], provider_name: str) -> None:
        self._bot = bot
        self._operators = operator_ids
        self._provider = provider_name
        self._account_empty = False

    async def account_empty(self) -> None:
        """The upstream refused for lack of credits: one message per outage, not per task."""
        if self._account_empty:
            return
        self._account_empty = True
        _log.warning("the %s account is out of credits", self._provider)
        for operator in sorted(self._operators):
            try:
                await self._bot.send_message(
                    operator,
                    text(Lang.EN, "alert.out_of_credits", provider=self._provider),
                )
            except TelegramError as error:
                _log.warning("could not alert operator %d: %s", operator, error)

    def account_ok(self) -> None:
        """A task was taken again: the next outage is news again."""
        self._account_empty = False
