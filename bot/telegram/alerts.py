"""Telling the operators what only they can fix: an upstream account left the rotation (no
credits, a bad key, an outage), and that it is back. One message each way per outage: the
account's circuit breaker says when one begins and ends."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from bot.providers import ProviderError
from bot.telegram.catalog import Lang, text

_log = logging.getLogger(__name__)


class OperatorAlerts:
    def __init__(self, bot: Bot, operator_ids: frozenset[int]) -> None:
        self._bot = bot
        self._operators = operator_ids

    async def account_down(self, account: str, error: ProviderError) -> None:
        _log.warning("the %s account is out of rotation: %s", account, error)
        if error.out_of_credits:
            await self._tell(text(Lang.EN, "alert.out_of_credits", account=account))
        else:
            reason = error.message + (f", code {error.code}" if error.code is not None else "")
            await self._tell(text(Lang.EN, "alert.account_down", account=account, reason=reason))

    async def account_back(self, account: str) -> None:
        _log.info("the %s account is back in rotation", account)
        await self._tell(text(Lang.EN, "alert.account_back", account=account))

    async def payment_question(self, message: str) -> None:
        """A user's /paysupport question, for the operators to answer."""
        await self._tell(message)

    async def _tell(self, message: str) -> None:
        for operator in sorted(self._operators):
            try:
                await self._bot.send_message(operator, message)
            except TelegramError as error:
                _log.warning("could not alert operator %d: %s", operator, error)
