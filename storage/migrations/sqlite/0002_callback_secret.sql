-- The unguessable part of a task's callback URL. Tasks from before this migration have
-- none and are found by polling alone.
ALTER TABLE tasks ADD COLUMN callback_secret TEXT;
