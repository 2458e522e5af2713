"""A throwaway PostgreSQL server for tests and benchmarks: `initdb` and `pg_ctl` of the
machine's PostgreSQL in a temporary folder, on a loopback port, gone at `stop()`.

As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root). It
trades durability for speed (fsync off): nothing in it outlives the test run.
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg

from fakes.bot_under_test import free_port
from storage.database import is_postgres_url
from storage.postgres import translate

_USER = "postgres"


def bin_dir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: `pg_config --bindir`, else Debian's folders."""
    try:
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if (Path(found) / "initdb").exists():
            return Path(found)
    except (OSError, subprocess.CalledProcessError):
        pass
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return next((Path(f) for f in folders if (Path(f) / "initdb").exists()), None)


class ThrowawayPostgres:
    def __init__(self) -> None:
        found = bin_dir()
        if found is None:
            raise RuntimeError(
                "PostgreSQL's initdb was not found (Debian: apt-get install postgresql)"
            )
        self._bin = found
        self._folder = Path(tempfile.mkdtemp(prefix="imagine-pg-"))
        self._data = self._folder / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        self._as_root = os.geteuid() == 0

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", _USER, "--"] if self._as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        if self._as_root:
            shutil.chown(self._folder, _USER)
        self._run(
            str(self._bin / "initdb"),
            "-D",
            str(self._data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self._folder}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
            ]
        )
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self._data),
            "-o",
            options,
            "-l",
            str(self._folder / "log"),
            "-w",
            "start",
        )

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self._folder / "log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self._run(
            str(self._bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-q",
            "-c",
            f"CREATE DATABASE {name}",
        )
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


def run_sql(target: Path | str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """One statement on a bot's database, from outside the bot (a test looking at rows, or
    arranging some), committed: `target` is a SQLite file or a PostgreSQL URL. SQL as the
    repositories write it (`?` placeholders)."""
    if isinstance(target, str) and is_postgres_url(target):
        with ThreadPoolExecutor(1) as thread:  # its own event loop, beside the caller's
            return thread.submit(asyncio.run, _postgres_rows(target, sql, params)).result()
    connection = sqlite3.connect(target)
    connection.row_factory = sqlite3.Row
    try:
        with connection:
            return connection.execute(sql, tuple(params)).fetchall()
    finally:
        connection.close()


async def _postgres_rows(url: str, sql: str, params: Sequence[Any]) -> list[Any]:
    statement, order = translate(sql)
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(statement, *[params[i] for i in order]))  # type: ignore[index]
    finally:
        await connection.close()
