"""Fetching generated media ourselves: its size and type first, then its bytes when
Telegram cannot fetch it by URL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx


class MediaTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Probe:
    url: str
    size: int | None  # None: the server did not say
    content_type: str | None


class MediaFetcher:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def probe(self, url: str) -> Probe:
        """Size and type from a HEAD request; unknown if the server will not say."""
        try:
            response = await self._client.head(url, follow_redirects=True)
        except httpx.HTTPError:
            return Probe(url, None, None)
        if response.status_code != 200:
            return Probe(url, None, None)
        length = response.headers.get("content-length", "")
        content_type = response.headers.get("content-type")
        return Probe(url, int(length) if length.isdigit() else None, content_type)

    async def probe_all(self, urls: tuple[str, ...] | list[str]) -> list[Probe]:
        return list(await asyncio.gather(*(self.probe(url) for url in urls)))

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        async with self._client.stream("GET", url, follow_redirects=True) as response:
            response.raise_for_status()
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise MediaTooLarge(f"{declared} bytes")
            chunks = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise MediaTooLarge(f"over {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
