-- What every process shares of an upstream account (bot.core.breaker.AccountState): its
-- circuit breaker, a 429's pause, its balance when it ran dry, its last check. Moved under
-- the account's lock; a row is made on the first move.
CREATE TABLE account_states (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    opened_at REAL,
    probe_sent_at REAL,
    reason TEXT,
    down_since REAL,
    successes INTEGER NOT NULL DEFAULT 0,
    paused_until REAL NOT NULL DEFAULT 0,
    balance_when_empty REAL,
    checked_at REAL NOT NULL DEFAULT 0
);
