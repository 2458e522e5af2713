-- A task made from inline mode: its result goes into the inline message a user chose
-- (editMessageMedia by inline_message_id), not into a chat. One task per inline message,
-- however often Telegram reports the choice.
ALTER TABLE tasks ADD COLUMN inline_message_id TEXT;
CREATE UNIQUE INDEX tasks_by_inline_message ON tasks (inline_message_id)
    WHERE inline_message_id IS NOT NULL;
-- The user's own results, for inline mode's "made before" results.
CREATE INDEX tasks_by_user ON tasks (user_id, id) WHERE state = 'delivered';
