"""Handing an image that Telegram holds to an upstream: the upstreams take images by URL,
so the bot downloads the file from Telegram and puts it where the upstream can fetch it:
the account's upload API where one in rotation has it, else a short-lived unguessable link
on the bot's own HTTP endpoint (`PUBLIC_URL/files/<token>`).

Used for a user's own photo (`/animate`), and for one of the bot's own images whose
result URL may have expired (the upstreams keep those about a day): Telegram keeps every
image the bot delivered, by its file id.
"""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from bot.engine.pool import Pool
from bot.providers import ProviderError
from storage.served_files import ServedFiles

_log = logging.getLogger(__name__)

IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def sniff_image_type(content: bytes) -> str | None:
    """JPEG, PNG or WEBP by the file's first bytes; None for anything else."""
    for magic, content_type in _MAGIC:
        if content.startswith(magic):
            return content_type
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


class ImageHandover:
    def __init__(
        self, *, bot: Bot, pool: Pool, served_files: ServedFiles, public_url: str | None
    ) -> None:
        self._bot = bot
        self._pool = pool
        self._served = served_files
        self._public_url = public_url

    @property
    def possible(self) -> bool:
        """Some way to put a file at a URL exists: an upload API, or the bot's own link."""
        return self._public_url is not None or self._pool.capabilities.file_upload

    async def download(self, file_id: str) -> bytes:
        """The file's bytes from Telegram. Raises `TelegramError`."""
        telegram_file = await self._bot.get_file(file_id)
        return bytes(await telegram_file.download_as_bytearray())

    async def publish(self, content: bytes, content_type: str) -> str | None:
        """A URL the upstream can fetch `content` at; None if there is no way to make one."""
        file_name = f"image.{IMAGE_TYPES.get(content_type, 'bin')}"
        try:
            uploaded = await self._pool.upload_file(content, file_name)
        except ProviderError as error:
            _log.warning("upload to the upstream failed: %s", error)
            uploaded = None
        if uploaded is not None:
            return uploaded
        if self._public_url is None:
            return None
        token = await self._served.add(content, content_type)
        return f"{self._public_url}/files/{token}"

    async def from_telegram(self, file_id: str) -> str | None:
        """The image Telegram keeps under `file_id`, at a URL the upstream can fetch; None if
        it cannot be had (Telegram refused, not an image, nowhere to put it)."""
        if not self.possible:
            return None
        try:
            content = await self.download(file_id)
        except TelegramError as error:
            _log.info("could not download image %s from Telegram: %s", file_id, error)
            return None
        content_type = sniff_image_type(content)
        if content_type is None:
            return None
        return await self.publish(content, content_type)
