-- Credits bought with Telegram Stars (see sqlite/0007_payments.sql). PostgreSQL widens the
-- ledger's CHECK in place.
ALTER TABLE ledger DROP CONSTRAINT ledger_kind_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check CHECK (
    kind IN ('reserve', 'commit', 'refund', 'grant', 'purchase', 'unpurchase'));
ALTER TABLE ledger DROP CONSTRAINT ledger_from_daily_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_from_daily_check CHECK (from_daily >= 0);
ALTER TABLE ledger ADD COLUMN from_purchased BIGINT NOT NULL DEFAULT 0
    CHECK (from_purchased >= 0);
ALTER TABLE ledger ADD COLUMN charge_id TEXT;
ALTER TABLE ledger ADD CONSTRAINT ledger_from_within CHECK (from_daily + from_purchased <= amount);

CREATE UNIQUE INDEX ledger_one_purchase ON ledger (charge_id) WHERE kind = 'purchase';
CREATE UNIQUE INDEX ledger_one_unpurchase ON ledger (charge_id) WHERE kind = 'unpurchase';

CREATE TABLE payments (
    charge_id          TEXT    PRIMARY KEY,
    chat_id            BIGINT  NOT NULL,
    user_id            BIGINT  NOT NULL,
    buyer_name         TEXT    NOT NULL,
    lang               TEXT    NOT NULL,
    message_thread_id  BIGINT,
    credits            BIGINT  NOT NULL CHECK (credits > 0),
    stars              BIGINT  NOT NULL CHECK (stars > 0),
    received_at        DOUBLE PRECISION NOT NULL,
    day                TEXT    NOT NULL,
    receipt_message_id BIGINT,
    refunded_at        DOUBLE PRECISION,
    refunded_credits   BIGINT
);
CREATE INDEX payments_by_day ON payments (day);
CREATE INDEX payments_without_receipt ON payments (received_at) WHERE receipt_message_id IS NULL;

CREATE TABLE star_scan (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    next_offset BIGINT NOT NULL
);
