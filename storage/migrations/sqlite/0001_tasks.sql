-- Every generation task, from the command that asked for it to its delivery.
CREATE TABLE tasks (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    chat_id            INTEGER NOT NULL,
    chat_type          TEXT    NOT NULL,
    user_id            INTEGER NOT NULL,
    lang               TEXT    NOT NULL,
    message_thread_id  INTEGER,
    request_message_id INTEGER,
    status_message_id  INTEGER,
    prompt             TEXT    NOT NULL,
    aspect_ratio       TEXT    NOT NULL,
    parent_task_id     INTEGER REFERENCES tasks (id),
    upstream_task_id   TEXT,
    result_urls        TEXT,      -- JSON list, once the upstream succeeded
    failure_kind       TEXT,
    failure_detail     TEXT,
    album_message_ids  TEXT,      -- JSON list, once the album is in the chat
    buttons_message_id INTEGER,
    created_at         REAL    NOT NULL,
    submitted_at       REAL,
    finished_at        REAL,
    delivered_at       REAL,
    updated_at         REAL    NOT NULL
);

-- One upstream task belongs to one of ours: a callback or a poll finds it by this.
CREATE UNIQUE INDEX tasks_by_upstream_id ON tasks (provider, upstream_task_id)
    WHERE upstream_task_id IS NOT NULL;

-- Start-up recovery reads every task that is not final.
CREATE INDEX tasks_unfinished ON tasks (state) WHERE state NOT IN ('delivered', 'reported');

CREATE INDEX tasks_by_chat ON tasks (chat_id, id);
