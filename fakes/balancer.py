"""A load balancer on loopback, as nginx stands in front of replicas: each request goes to
the next replica in turn, and to the one after it if that one does not answer (a replica
killed, or not up yet). Telegram's webhook and the upstream's callbacks come through it,
so any replica may receive any update or callback."""

from __future__ import annotations

import itertools
from collections import Counter

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.server import LoopbackServer


class Balancer:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends  # base URLs, e.g. http://127.0.0.1:20001
        self.served: Counter[str] = Counter()  # requests each backend answered
        self._turn = itertools.count()
        self._client = httpx.AsyncClient(timeout=30.0)
        self._server = LoopbackServer(
            Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST"])])
        )
        self.url = ""

    async def start(self) -> str:
        self.url = await self._server.start()
        return self.url

    async def stop(self) -> None:
        await self._server.stop()
        await self._client.aclose()

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        start = next(self._turn)
        response = Response("no replica answered", status_code=502)
        for step in range(len(self.backends)):
            backend = self.backends[(start + step) % len(self.backends)]
            try:
                answer = await self._client.request(
                    request.method,
                    backend + request.url.path,
                    params=request.url.query,
                    content=body,
                    headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                )
            except httpx.TransportError:
                continue  # as nginx's proxy_next_upstream: the next replica
            self.served[backend] += 1
            response = Response(answer.content, answer.status_code, media_type=None)
            for name in ("content-type",):
                if name in answer.headers:
                    response.headers[name] = answer.headers[name]
            break
        return response
