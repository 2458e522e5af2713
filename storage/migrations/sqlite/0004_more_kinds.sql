-- Animate, video and upscale tasks: what they start from, and the mode they run in.
ALTER TABLE tasks ADD COLUMN mode TEXT;
ALTER TABLE tasks ADD COLUMN source_task_id INTEGER REFERENCES tasks (id);
ALTER TABLE tasks ADD COLUMN source_index INTEGER;
ALTER TABLE tasks ADD COLUMN image_url TEXT;
-- Telegram's file_id of every delivered item (JSON list, in result order), so re-sending
-- never uploads again.
ALTER TABLE tasks ADD COLUMN media_file_ids TEXT;

-- An animation being set up: the 🎬 press (or /animate) opened it, a mode and an optional
-- motion prompt complete it. Used once: the step that creates the task claims it.
CREATE TABLE drafts (
    id             INTEGER PRIMARY KEY,
    chat_id        INTEGER NOT NULL,
    chat_type      TEXT    NOT NULL,
    user_id        INTEGER NOT NULL,
    lang           TEXT    NOT NULL,
    message_thread_id INTEGER,
    message_id     INTEGER,          -- the bot's message that shows the choices
    source_task_id INTEGER REFERENCES tasks (id),
    source_index   INTEGER,
    image_url      TEXT,             -- a photo of the user's own
    mode           TEXT,
    prompt         TEXT,
    state          TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'used')),
    task_id        INTEGER REFERENCES tasks (id),
    created_at     REAL    NOT NULL
);
CREATE UNIQUE INDEX drafts_one_open ON drafts (chat_id, user_id, source_task_id, source_index)
    WHERE state = 'open' AND source_task_id IS NOT NULL;
CREATE INDEX drafts_by_message ON drafts (chat_id, message_id);

-- Files the bot serves to the upstream itself (a user's photo, when the upstream has no
-- upload API): short-lived, behind an unguessable token.
CREATE TABLE served_files (
    token        TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    content      BLOB NOT NULL,
    expires_at   REAL NOT NULL
);
