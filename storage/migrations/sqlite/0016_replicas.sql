-- Liveness is one heartbeat per replica, not a lease renewed on every task it holds: a
-- replica writes its row every third of TASK_LEASE, and a task's claim (tasks.claimed_by)
-- holds while its replica's row is alive. A replica whose row ran out (killed, frozen, cut
-- off) has its tasks taken over by the others. tasks.claimed_until is no longer written.
CREATE TABLE replicas (
    name TEXT PRIMARY KEY,
    alive_until REAL NOT NULL
);
