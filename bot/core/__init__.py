"""The pure core: the task (its model, states and clocks), quota arithmetic, parsing,
button data and constants. Nothing here does I/O or imports a library that does
(telegram, httpx, aiosqlite, starlette): CI checks it (import-linter, pyproject.toml)."""
