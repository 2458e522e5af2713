ALTER TABLE tasks ADD COLUMN inline_message_id TEXT;
CREATE UNIQUE INDEX tasks_by_inline_message ON tasks (inline_message_id)
    WHERE inline_message_id IS NOT NULL;
CREATE INDEX tasks_by_user ON tasks (user_id, id) WHERE state = 'delivered';
