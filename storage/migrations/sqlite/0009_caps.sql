-- An upstream account's caps hold for every process on the database together: the move to
-- `submitting` counts the account's tasks the upstream is working on, and those it was sent
-- in the last hour.
CREATE INDEX tasks_upstream_has ON tasks (account) WHERE state IN ('submitting', 'running');
CREATE INDEX tasks_by_account_submitted ON tasks (account, submitted_at)
    WHERE submitted_at IS NOT NULL;
