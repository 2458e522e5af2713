"""`python -m bot`: read the settings, run until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from pydantic import ValidationError
from telegram.error import InvalidToken

from bot.app import run, run_event_loop
from bot.ops.logs import configure_logging
from bot.providers import AccountsError, load_accounts
from bot.settings import Settings, describe_settings_error


def main() -> int:
    try:
        settings = Settings()  # required fields come from the environment
    except ValidationError as error:
        print(describe_settings_error(error), file=sys.stderr)
        return 2
    try:
        load_accounts(settings)  # a broken PROVIDERS_FILE stops the start, in one line
    except AccountsError as error:
        print(str(error), file=sys.stderr)
        return 2
    configure_logging(settings.log_format)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run(settings, stop=stop)

    try:
        run_event_loop(serve())
    except NotImplementedError as error:
        print(str(error), file=sys.stderr)
        return 2
    except InvalidToken:
        print(
            "Telegram refused the bot token (TELEGRAM_BOT_TOKEN): "
            "check it with @BotFather (/token)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
