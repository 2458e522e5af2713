-- Credits bought with Telegram Stars.
--
-- The ledger gains two kinds: purchase (a payment's credits, added once per Telegram charge
-- id) and unpurchase (what a refund of that payment took back, once). Reservations note how
-- much came from purchased credits (from_purchased), so granted and purchased credits are
-- told apart for as long as the ledger lasts. SQLite cannot widen a CHECK in place: the
-- table is built anew and its rows copied.
CREATE TABLE ledger_new (
    id             INTEGER PRIMARY KEY,
    chat_id        INTEGER NOT NULL,
    user_id        INTEGER,
    task_id        INTEGER REFERENCES tasks (id),
    kind           TEXT    NOT NULL CHECK (kind IN ('reserve', 'commit', 'refund', 'grant',
                                                    'purchase', 'unpurchase')),
    amount         INTEGER NOT NULL CHECK (amount >= 0),
    from_daily     INTEGER NOT NULL DEFAULT 0 CHECK (from_daily >= 0),
    from_purchased INTEGER NOT NULL DEFAULT 0 CHECK (from_purchased >= 0),
    day            TEXT    NOT NULL,
    created_at     REAL    NOT NULL,
    charge_id      TEXT,   -- purchase, unpurchase: telegram_payment_charge_id
    CHECK (from_daily + from_purchased <= amount)
);
INSERT INTO ledger_new (id, chat_id, user_id, task_id, kind, amount, from_daily, day, created_at)
SELECT id, chat_id, user_id, task_id, kind, amount, from_daily, day, created_at FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;

CREATE UNIQUE INDEX ledger_one_reserve ON ledger (task_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_settlement ON ledger (task_id) WHERE kind IN ('commit', 'refund');
CREATE INDEX ledger_by_chat_day ON ledger (chat_id, day);
-- A payment adds its credits once, and is taken back once, whatever Telegram repeats.
CREATE UNIQUE INDEX ledger_one_purchase ON ledger (charge_id) WHERE kind = 'purchase';
CREATE UNIQUE INDEX ledger_one_unpurchase ON ledger (charge_id) WHERE kind = 'unpurchase';

-- Each successful payment, recorded (with its ledger row, in one transaction) before the
-- bot does anything else about it.
CREATE TABLE payments (
    charge_id          TEXT    PRIMARY KEY,  -- telegram_payment_charge_id
    chat_id            INTEGER NOT NULL,     -- where the credits went (the payload's chat)
    user_id            INTEGER NOT NULL,     -- who paid
    buyer_name         TEXT    NOT NULL,
    lang               TEXT    NOT NULL,
    message_thread_id  INTEGER,
    credits            INTEGER NOT NULL CHECK (credits > 0),
    stars              INTEGER NOT NULL CHECK (stars > 0),
    received_at        REAL    NOT NULL,
    day                TEXT    NOT NULL,     -- UTC day received, for /stats
    receipt_message_id INTEGER,              -- NULL until the receipt is out
    refunded_at        REAL,
    refunded_credits   INTEGER               -- what the refund took back
);
CREATE INDEX payments_by_day ON payments (day);
CREATE INDEX payments_without_receipt ON payments (received_at) WHERE receipt_message_id IS NULL;

-- How far the bot has looked through its Star transactions (oldest first) for payments it
-- never recorded: each start looks from a page before there to the end.
CREATE TABLE star_scan (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    next_offset INTEGER NOT NULL
);
