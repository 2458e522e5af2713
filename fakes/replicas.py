"""Several bot processes on one PostgreSQL database, as operators run them: each a real
`python -m bot` process (to be killed with -9), behind a load balancer in webhook mode.
For the multi-process tests and the chaos benchmark."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

from fakes.balancer import Balancer
from fakes.bot_under_test import BOT_TOKEN, PROVIDER_KEY, free_port
from fakes.kie import FakeKie
from fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent


def bot_environment(
    telegram: FakeTelegram, kie: FakeKie, database: Path | str, **settings: str
) -> dict[str, str]:
    """The environment of a `python -m bot` process pointed at the test servers and at
    `database` (a SQLite file, or a PostgreSQL URL)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "PROVIDER_"))},
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_URL": telegram.url,
        "PROVIDER_API_KEY": PROVIDER_KEY,
        "PROVIDER_BASE_URL": kie.url,
        **(
            {"DATABASE_URL": database}
            if isinstance(database, str)
            else {"DATABASE_PATH": str(database)}
        ),
        "HTTP_HOST": "127.0.0.1",
        **settings,
    }


class Replica:
    """One bot process."""

    def __init__(self, name: str, env: dict[str, str], log: Path | None = None) -> None:
        self.name = name
        self.port = free_port()
        self._env = {**env, "INSTANCE_ID": name, "HTTP_PORT": str(self.port)}
        self._log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until its /healthz answers."""
        output: Any = asyncio.subprocess.DEVNULL
        if self._log is not None:
            output = self._log.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                env=self._env,
                cwd=ROOT,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=output,
            )
        finally:
            if self._log is not None:
                output.close()  # the process has its own copy of the file
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.health() is None:
            if self.process.returncode is not None:
                raise RuntimeError(f"replica {self.name} exited with {self.process.returncode}")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"replica {self.name} never answered /healthz")
            await asyncio.sleep(0.05)

    async def health(self) -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(f"{self.url}/healthz")
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def kill(self) -> None:
        """kill -9: no goodbye, its claims and connections left as they were."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                await self.kill()


class Replicas:
    """`count` replicas on `database_url`, updates by webhook through a balancer (or by
    polling, `webhook=False`), results by callback through the same balancer."""

    def __init__(
        self,
        telegram: FakeTelegram,
        kie: FakeKie,
        database_url: str,
        count: int,
        *,
        webhook: bool = True,
        settings: dict[str, str] | None = None,
        log_folder: Path | None = None,
    ) -> None:
        self.balancer = Balancer([])
        self._env_base = bot_environment(
            telegram,
            kie,
            database_url,
            DATABASE_POOL_SIZE="4",
            TELEGRAM_WEBHOOK="true" if webhook else "false",
            **(settings or {}),
        )
        self._log_folder = log_folder
        self.replicas = [self._new(f"r{n}") for n in range(1, count + 1)]
        self.balancer.backends = [replica.url for replica in self.replicas]

    def _new(self, name: str) -> Replica:
        log = self._log_folder / f"{name}.log" if self._log_folder else None
        return Replica(name, self._env_base, log)

    async def start(self) -> None:
        url = await self.balancer.start()
        self._env_base["PUBLIC_URL"] = url
        for replica in self.replicas:
            replica._env["PUBLIC_URL"] = url
        await asyncio.gather(*(replica.start() for replica in self.replicas))

    async def restart(self, replica: Replica) -> None:
        """Start a killed replica again, under its name and port."""
        await replica.start()

    async def stop(self) -> None:
        await asyncio.gather(*(replica.stop() for replica in self.replicas))
        await self.balancer.stop()
