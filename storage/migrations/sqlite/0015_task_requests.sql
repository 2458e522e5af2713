-- A request recorded once: Telegram delivers an update again when its webhook was not
-- answered (a replica killed after recording the task, before its 200), and the chat's
-- message must not make, and charge, a second task. The key is the request's (a chat and
-- its message, for /imagine and /video).
CREATE TABLE task_requests (
    key TEXT PRIMARY KEY,
    task_id INTEGER NOT NULL
);
