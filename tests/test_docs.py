"""The docs name what exists: every repository path a page names (in backticks) is there.
(Links between pages are checked by the docs build itself: mkdocs.yml is strict.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("bot", "storage", "fakes", "tests", "bench", "scripts", "deploy", "docs")


def test_every_path_the_docs_name_exists() -> None:
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    named = re.compile(rf"`((?:{'|'.join(TOP)})/[\w./-]*)`")
    missing = [
        f"{page.relative_to(ROOT)}: {path}"
        for page in pages
        for path in named.findall(page.read_text(encoding="utf-8"))
        if "*" not in path and not (ROOT / path).exists()
    ]
    assert missing == []
