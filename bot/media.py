"""Fetching generated media ourselves, for when Telegram cannot fetch a result URL."""

from __future__ import annotations

import asyncio

import httpx

# Telegram takes uploads of photos up to 10 MB.
MAX_PHOTO_UPLOAD_BYTES = 10 * 1024 * 1024


class MediaTooLarge(Exception):
    pass


class MediaFetcher:
    def __init__(self, client: httpx.AsyncClient, *, max_bytes: int = MAX_PHOTO_UPLOAD_BYTES):
        self._client = client
        self._max_bytes = max_bytes

    async def fetch(self, url: str) -> bytes:
        async with self._client.stream("GET", url) as response:
            response.raise_for_status()
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self._max_bytes:
                raise MediaTooLarge(f"{declared} bytes")
            chunks = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise MediaTooLarge(f"over {self._max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    async def fetch_all(self, urls: tuple[str, ...] | list[str]) -> list[bytes]:
        return list(await asyncio.gather(*(self.fetch(url) for url in urls)))
