ALTER TABLE tasks RENAME COLUMN provider TO account;
