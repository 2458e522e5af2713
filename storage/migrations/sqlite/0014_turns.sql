-- The line's order over every replica's tasks: chats take turns (round robin), each task
-- given its turn when it is recorded (bot.core.line.turn_for). Waiting tasks are taken,
-- and their places counted, by (turn, id).
ALTER TABLE tasks ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_line ON tasks (turn, id) WHERE state = 'pending';
CREATE INDEX tasks_chat_line ON tasks (chat_id, turn) WHERE state = 'pending';
