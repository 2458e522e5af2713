-- The credit ledger: append-only, so every balance can be explained row by row.
-- reserve: a task's cost, taken when the task is recorded (from_daily of it from the day's
--          allowance, the rest from granted credits); refund: the same back, when it fails;
-- commit: the reservation is spent, when the result is delivered; grant: an operator's gift.
CREATE TABLE ledger (
    id         INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL,
    user_id    INTEGER,
    task_id    INTEGER REFERENCES tasks (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('reserve', 'commit', 'refund', 'grant')),
    amount     INTEGER NOT NULL CHECK (amount >= 0),
    from_daily INTEGER NOT NULL DEFAULT 0 CHECK (from_daily >= 0 AND from_daily <= amount),
    day        TEXT    NOT NULL,  -- the UTC day the entry counts against (YYYY-MM-DD)
    created_at REAL    NOT NULL
);

-- A task is reserved once and settled once: committed or refunded, never both, never twice.
CREATE UNIQUE INDEX ledger_one_reserve ON ledger (task_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_settlement ON ledger (task_id) WHERE kind IN ('commit', 'refund');
CREATE INDEX ledger_by_chat_day ON ledger (chat_id, day);

-- What a chat's admins (or, in a private chat, its user) and the operators chose.
CREATE TABLE chat_settings (
    chat_id        INTEGER PRIMARY KEY,
    daily_credits  INTEGER,            -- NULL: CHAT_DAILY_CREDITS
    user_daily_cap INTEGER,            -- NULL: GROUP_USER_DAILY_CREDITS; 0: no cap
    buttons_for    TEXT    NOT NULL DEFAULT 'requester' CHECK (buttons_for IN ('requester', 'everyone')),
    allow_spicy    INTEGER NOT NULL DEFAULT 0,
    default_ratio  TEXT,               -- NULL: 1:1
    updated_at     REAL    NOT NULL
);

ALTER TABLE tasks ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;
