"""Limits and fixed values that the design depends on, in one place."""

from typing import Final

ASPECT_RATIOS: Final = ("1:1", "2:3", "3:2", "16:9", "9:16")
DEFAULT_ASPECT_RATIO: Final = "1:1"

# Upstream limits (docs/upstream/README.md).
MAX_PROMPT_CHARS: Final = 5000

# Telegram's chat types that are groups (a group's credits are shared, its admins decide).
GROUP_CHAT_TYPES: Final = frozenset({"group", "supergroup"})


def is_group_chat(chat_type: str) -> bool:
    """The one way the bot asks whether a chat (by Telegram's chat type) is a group."""
    return chat_type in GROUP_CHAT_TYPES


# Telegram limits.
MAX_CAPTION_CHARS: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64
ALBUM_MAX_ITEMS: Final = 10
