-- What every process shares of an upstream account (bot.core.breaker.AccountState): its
-- circuit breaker, a 429's pause, its balance when it ran dry, its last check. Moved under
-- the account's lock; a row is made on the first move.
CREATE TABLE account_states (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    opened_at DOUBLE PRECISION,
    probe_sent_at DOUBLE PRECISION,
    reason TEXT,
    down_since DOUBLE PRECISION,
    successes INTEGER NOT NULL DEFAULT 0,
    paused_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    balance_when_empty DOUBLE PRECISION,
    checked_at DOUBLE PRECISION NOT NULL DEFAULT 0
);
