ALTER TABLE tasks ADD COLUMN callback_secret TEXT;
