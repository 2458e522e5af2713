"""imagine-bot: Grok Imagine in Telegram."""

import os

# Opt in to python-telegram-bot's coming behaviour (durations as timedelta) now, rather than
# run on the deprecated one: PTB reads this when its error classes are used.
os.environ.setdefault("PTB_TIMEDELTA", "1")
