"""What the Telegram test server and the database say happened to every task, for the
multi-process tests and the chaos benchmark: each delivered task's album in its chat once,
and a ledger that explains every task's credits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakes.postgres import run_sql
from fakes.telegram import FakeTelegram


@dataclass(frozen=True, slots=True)
class Audit:
    tasks: list[Any]  # every task row, by id
    not_final: list[int]  # tasks neither delivered nor reported
    missing_albums: list[int]  # chats with fewer albums than tasks delivered there
    extra_albums: list[int]  # chats with more albums than tasks delivered there
    unexplained: list[int]  # tasks whose ledger rows are not a reservation and a settlement


def audit(telegram: FakeTelegram, database: Path | str) -> Audit:
    tasks = run_sql(database, "SELECT * FROM tasks ORDER BY id")
    albums = Counter(int(c.params["chat_id"]) for c in telegram.calls_of("sendMediaGroup") if c.ok)
    delivered = Counter(t["chat_id"] for t in tasks if t["state"] == "delivered")
    chats = set(albums) | {t["chat_id"] for t in tasks}
    kinds: dict[int, list[str]] = {}
    for row in run_sql(database, "SELECT task_id, kind FROM ledger WHERE task_id IS NOT NULL"):
        kinds.setdefault(row["task_id"], []).append(row["kind"])
    return Audit(
        tasks=tasks,
        not_final=[t["id"] for t in tasks if t["state"] not in ("delivered", "reported")],
        missing_albums=sorted(c for c in chats if albums[c] < delivered[c]),
        extra_albums=sorted(c for c in chats if albums[c] > delivered[c]),
        unexplained=[
            t["id"]
            for t in tasks
            if sorted(kinds.get(t["id"], []))
            != sorted(["reserve", "commit" if t["state"] == "delivered" else "refund"])
        ],
    )
