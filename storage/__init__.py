"""Storage: the database (SQLite, or PostgreSQL for several replicas), its migrations and the
repositories over it."""
