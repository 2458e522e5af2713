-- Telegram's limits for the bot as a whole, when several processes share a database
-- (PostgreSQL): the pace of each chat, and of all chats (key 0), as the moment its leaky
-- bucket would be empty (GCRA's "theoretical arrival time"). Each message reserves its
-- moment here before it leaves. With SQLite there is one process; it paces in memory.
CREATE TABLE telegram_pace (
    key  BIGINT PRIMARY KEY,  -- a chat id; 0: every chat
    tat  DOUBLE PRECISION NOT NULL,
    step DOUBLE PRECISION NOT NULL   -- seconds a message moves it on: 1 / the pace's rate
);
