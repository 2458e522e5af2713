-- Each upstream account's pace of status reads (its ~10 a second per key), for all the
-- processes on the database together, as the moment its leaky bucket would be empty (as
-- telegram_pace). Used on PostgreSQL; with SQLite one process paces in memory.
CREATE TABLE upstream_pace (
    account TEXT PRIMARY KEY,
    tat REAL NOT NULL,
    step REAL NOT NULL
);
