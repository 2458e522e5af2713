"""Back up the live database with SQLite's online backup API: consistent while the bot
runs and writes, unlike a file copy (which can catch a half-written page or miss the WAL).

    python -m storage.backup data/imagine-bot.sqlite3 backups/imagine-bot-$(date +%F).sqlite3
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path


def backup(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        sqlite3.connect(f"file:{source}?mode=ro", uri=True) as live,
        sqlite3.connect(target) as copy,
    ):
        live.backup(copy, pages=1024)  # in steps, so the bot's writes are not held up for long
    copy.close()
    live.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m storage.backup DATABASE TARGET", file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    if not source.exists():
        print(f"no database at {source}", file=sys.stderr)
        return 2
    backup(source, target)
    print(f"backed up {source} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
