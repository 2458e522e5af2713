"""Getting results into a chat within Telegram's limits.

By URL Telegram fetches at most 5 MB for a photo and 20 MB for anything else; an upload may
be 10 MB (photo) or 50 MB (anything else). An album goes by URL first, as generated images
fit; only when Telegram refuses it does the bot ask each item's size, upload what fits,
send a document past the photo limits, and a link, last, past everything. A video's size
is asked first (one request), as videos often pass 20 MB. One item failing does not lose
the others.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.core.constants import ALBUM_MAX_ITEMS
from bot.telegram.catalog import Lang, Markup, text
from bot.telegram.media import MediaFetcher, MediaTooLarge, Probe
from bot.telegram.results import result_keyboard, result_text

_log = logging.getLogger(__name__)

MB = 1024 * 1024
OTHER_BY_URL = 20 * MB
PHOTO_UPLOAD = 10 * MB
OTHER_UPLOAD = 50 * MB

_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v")


class MediaKind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"


def media_kind(probe: Probe) -> MediaKind:
    """What a result is: by the type its server declares, else by the URL's ending."""
    if probe.content_type:
        if probe.content_type.startswith("video/"):
            return MediaKind.VIDEO
        if probe.content_type.startswith("image/"):
            return MediaKind.PHOTO
    return MediaKind.VIDEO if is_video_url(probe.url) else MediaKind.PHOTO


def is_video_url(url: str) -> bool:
    return httpx.URL(url).path.lower().endswith(_VIDEO_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a task's messages go: its chat, its forum topic, under the message they answer."""

    chat_id: int
    message_thread_id: int | None
    reply_to: int | None

    @property
    def reply_parameters(self) -> ReplyParameters | None:
        if self.reply_to is None:
            return None
        return ReplyParameters(self.reply_to, allow_sending_without_reply=True)


@dataclass
class Delivered:
    """What reached the chat, per result index: message ids (0: not delivered as media) and
    Telegram file ids of photos and videos ("" for a document or a link)."""

    message_ids: list[int]
    file_ids: list[str]
    links: list[int] = field(default_factory=list)  # indexes sent as links only

    @property
    def first_message_id(self) -> int | None:
        return next((m for m in self.message_ids if m), None)


class Deliverer:
    def __init__(self, bot: Bot, fetcher: MediaFetcher) -> None:
        self._bot = bot
        self._fetcher = fetcher

    async def probe(self, urls: Sequence[str]) -> list[Probe]:
        return await self._fetcher.probe_all(list(urls))

    async def send_images(
        self, where: Placement, urls: Sequence[str], caption: str | None, lang: Lang
    ) -> Delivered:
        """By URL first: a generated image almost always fits Telegram's 5 MB, and asking
        the file server about every item first would cost six requests per album. Only when
        Telegram refuses the album does the bot look at each item (`_send_checked`)."""
        urls = list(urls[:ALBUM_MAX_ITEMS])
        try:
            messages = await self.send_album(where, list(enumerate(urls)), caption)
        except BadRequest as error:
            _log.info("album by URL refused (%s); looking at each item", error)
            return await self._send_checked(where, await self.probe(urls), caption, lang)
        return Delivered([m.message_id for m in messages], [_photo_id(m) for m in messages])

    async def _send_checked(
        self, where: Placement, probes: list[Probe], caption: str | None, lang: Lang
    ) -> Delivered:
        """After Telegram would not fetch the album: each item the bot can fetch within the
        photo upload limit is uploaded, a larger one goes as a document, and one past every
        limit (or that cannot be fetched) as a link."""
        delivered = Delivered([0] * len(probes), [""] * len(probes))
        album: list[tuple[int, str | bytes]] = []
        documents: list[int] = []
        for index, probe in enumerate(probes):
            size = probe.size
            if size is None or size <= PHOTO_UPLOAD:
                content = await self._download(probe.url, PHOTO_UPLOAD)
                if content is None:
                    delivered.links.append(index)
                else:
                    album.append((index, content))
            elif size <= OTHER_UPLOAD:
                documents.append(index)
            else:
                delivered.links.append(index)
        messages = await self.send_album(where, album, caption) if album else ()
        for (index, _), message in zip(album, messages, strict=True):
            delivered.message_ids[index] = message.message_id
            delivered.file_ids[index] = _photo_id(message)
        for index in documents:
            document = await self._send_document(where, probes[index])
            if document is None:
                delivered.links.append(index)
            else:
                # No file id: the ids kept are those that can go again as the same media.
                delivered.message_ids[index] = document.message_id
        if delivered.links:
            await self._send_links(where, [probes[i] for i in sorted(delivered.links)], lang)
        return delivered

    async def send_video(
        self,
        where: Placement,
        probe: Probe,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
        lang: Lang,
    ) -> Delivered:
        size = probe.size
        message: Message | None = None
        if size is None or size <= OTHER_BY_URL:
            try:
                message = await self._video(where, probe.url, caption, markup)
            except BadRequest as error:
                _log.info("video by URL refused (%s); uploading instead", error)
        if message is None and (size is None or size <= OTHER_UPLOAD):
            content = await self._download(probe.url, OTHER_UPLOAD)
            if content is not None:
                message = await self._video(where, content, caption, markup)
        if message is None:
            link_message = await self._send_links(where, [probe], lang, markup)
            return Delivered([link_message.message_id], [""], links=[0])
        return Delivered([message.message_id], [message.video.file_id if message.video else ""])

    async def send_buttons(
        self,
        where: Placement,
        task_id: int,
        results: int,
        aspect_ratio: str,
        lang: Lang,
        *,
        animate_offered: bool,
    ) -> Message:
        """The message under an image set with its 🎬 and 🔁 buttons, replying to the set."""
        return await self._bot.send_message(
            where.chat_id,
            result_text(lang, aspect_ratio),
            reply_markup=result_keyboard(task_id, results, animate_offered=animate_offered),
            message_thread_id=where.message_thread_id,
            reply_parameters=where.reply_parameters,
        )

    # --- the sends ----------------------------------------------------------------------------

    async def send_album(
        self, where: Placement, album: list[tuple[int, str | bytes]], caption: str | None
    ) -> tuple[Message, ...]:
        """Photos (URLs, file ids or bytes, each with its result index) with the caption on
        the first: one as a photo, several as an album."""
        if len(album) == 1:
            message = await self._bot.send_photo(
                where.chat_id,
                album[0][1],
                caption=caption,
                message_thread_id=where.message_thread_id,
                reply_parameters=where.reply_parameters,
            )
            return (message,)
        media = [
            InputMediaPhoto(
                photo,
                caption=caption if position == 0 else None,
                parse_mode=ParseMode.HTML if position == 0 and caption else None,
            )
            for position, (_, photo) in enumerate(album)
        ]
        return await self._bot.send_media_group(
            where.chat_id,
            media,
            message_thread_id=where.message_thread_id,
            reply_parameters=where.reply_parameters,
        )

    async def _video(
        self,
        where: Placement,
        video: str | bytes,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        return await self._bot.send_video(
            where.chat_id,
            video,
            caption=caption,
            reply_markup=markup,
            supports_streaming=True,
            message_thread_id=where.message_thread_id,
            reply_parameters=where.reply_parameters,
        )

    async def _send_document(self, where: Placement, probe: Probe) -> Message | None:
        """A photo too large to be a photo, as a file: by URL if it fits, else uploaded."""
        document: str | bytes | None = probe.url
        if probe.size is not None and probe.size > OTHER_BY_URL:
            document = await self._download(probe.url, OTHER_UPLOAD)
        if document is None:
            return None
        try:
            return await self._bot.send_document(
                where.chat_id,
                document,
                message_thread_id=where.message_thread_id,
                reply_parameters=where.reply_parameters,
            )
        except BadRequest as error:
            _log.info("document refused: %s", error)
            return None

    async def _send_links(
        self,
        where: Placement,
        probes: list[Probe],
        lang: Lang,
        markup: InlineKeyboardMarkup | None = None,
    ) -> Message:
        items = "\n".join(
            text(
                lang,
                "delivery.link",
                link=Markup(f'<a href="{html.escape(p.url, quote=True)}">{number}</a>'),
                size=f"{p.size / MB:.0f}" if p.size else "?",
            )
            for number, p in enumerate(probes, start=1)
        )
        return await self._bot.send_message(
            where.chat_id,
            text(lang, "delivery.links", items=Markup(items)),
            reply_markup=markup,
            message_thread_id=where.message_thread_id,
            reply_parameters=where.reply_parameters,
        )

    async def _download(self, url: str, limit: int) -> bytes | None:
        try:
            return await self._fetcher.fetch(url, max_bytes=limit)
        except (httpx.HTTPError, MediaTooLarge) as error:
            _log.info("could not fetch %s: %s", httpx.URL(url).path, error)
            return None


def _photo_id(message: Message) -> str:
    return message.photo[-1].file_id if message.photo else ""
