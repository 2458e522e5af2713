-- A pool of upstream accounts: a task's `account` is the one the line sent it to (the
-- reseller's task ids belong to that account), empty while it waits for its turn. Before
-- the pool this column named the provider, which is also the name of the pool of one the
-- old PROVIDER_* settings make, so the tasks already there keep their account.
ALTER TABLE tasks RENAME COLUMN provider TO account;
