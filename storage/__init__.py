"""SQLite storage: the connection, its migrations and the repositories over it."""
