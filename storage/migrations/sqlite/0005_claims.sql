-- Work is claimed from storage: the process driving a task holds a lease on it and renews
-- it while it works; a task with no lease, or one whose lease ran out (its process died),
-- is any process's to pick up.
ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
ALTER TABLE tasks ADD COLUMN claimed_until REAL;
