"""Ordered schema migrations, one series per database: `sqlite/NNNN_name.sql` and
`postgres/NNNN_name.sql`, applied in order at start-up.

Both series have the same numbers and names (a test checks it): migration N brings either
database to the same schema, so `python -m storage.copy_to_postgres` can tell that a
SQLite file and a PostgreSQL database match. A migration never changes once it has
shipped; a change to the schema is a new file in both folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

Dialect = Literal["sqlite", "postgresql"]
_FOLDERS: dict[Dialect, str] = {"sqlite": "sqlite", "postgresql": "postgres"}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def all_migrations(dialect: Dialect = "sqlite") -> list[Migration]:
    found = []
    for entry in resources.files(__name__).joinpath(_FOLDERS[dialect]).iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(
                Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found
