"""A task's row: how it reads back as a `Task`, how values are written, and the conditions
the partial indexes are made of (shared by `tasks.py` and `claims.py`)."""

from __future__ import annotations

import json

from bot.core.lifecycle import FINAL_STATES, FailureKind, TaskKind, TaskState
from bot.core.task import Task
from storage.database import Row

# Literally the condition of the `tasks_unfinished` partial index (0001_tasks.sql), so that
# SQLite can use it: a condition with bound parameters does not let it.
UNFINISHED = "state NOT IN ('delivered', 'reported')"
# Telegram keeps at least one of the task's results as a photo or video it can send again.
HAS_FILE_ID = {
    "sqlite": "EXISTS (SELECT 1 FROM json_each(tasks.media_file_ids) WHERE value != '')",
    "postgresql": "EXISTS (SELECT 1 FROM json_array_elements_text(CAST(tasks.media_file_ids"
    " AS json)) AS item (value) WHERE value != '')",
}
# The album's messages, each with its index: (value, key) rows.
ALBUM_ITEMS = {
    "sqlite": "json_each(tasks.album_message_ids) AS item",
    "postgresql": "json_array_elements_text(CAST(tasks.album_message_ids AS json))"
    " WITH ORDINALITY AS item (value, number), LATERAL (SELECT item.number - 1 AS key) AS k",
}
# Tasks the upstream may be working on hold a slot of their account (the caps); literally
# the condition of the `tasks_upstream_has` partial index (0009_caps.sql).
UPSTREAM_HAS = "state IN ('submitting', 'running')"
assert {"delivered", "reported"} == set(FINAL_STATES)


def encode(name: str, value: object) -> object:
    """A column's value as the database stores it: lists as JSON."""
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return value


def task_from_row(row: Row) -> Task:
    """A task as its row has it."""
    failure_kind = row["failure_kind"]
    return Task(
        id=row["id"],
        kind=TaskKind(row["kind"]),
        state=TaskState(row["state"]),
        account=row["account"],
        chat_id=row["chat_id"],
        chat_type=row["chat_type"],
        user_id=row["user_id"],
        lang=row["lang"],
        message_thread_id=row["message_thread_id"],
        request_message_id=row["request_message_id"],
        status_message_id=row["status_message_id"],
        prompt=row["prompt"],
        aspect_ratio=row["aspect_ratio"],
        parent_task_id=row["parent_task_id"],
        upstream_task_id=row["upstream_task_id"],
        result_urls=tuple(json.loads(row["result_urls"] or "[]")),
        failure_kind=FailureKind(failure_kind) if failure_kind else None,
        failure_detail=row["failure_detail"],
        album_message_ids=tuple(json.loads(row["album_message_ids"] or "[]")),
        buttons_message_id=row["buttons_message_id"],
        callback_secret=row["callback_secret"],
        cost=row["cost"],
        mode=row["mode"],
        source_task_id=row["source_task_id"],
        source_index=row["source_index"],
        image_url=row["image_url"],
        image_file_id=row["image_file_id"],
        media_file_ids=tuple(json.loads(row["media_file_ids"] or "[]")),
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        finished_at=row["finished_at"],
        delivered_at=row["delivered_at"],
        inline_message_id=row["inline_message_id"],
        turn=row["turn"],
    )
