"""What the bot imports is what it declares: every library imported by `bot/` and
`storage/` is a dependency in pyproject.toml (not one that happens to come with another,
as aiolimiter once came with PTB's extra), and nothing private of a library is imported."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"bot", "storage"}


def imports() -> dict[str, set[str]]:
    """Every module imported by the bot's code, by the file that imports it."""
    found: dict[str, set[str]] = {}
    for folder in FIRST_PARTY:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0] for spec in project["dependencies"]}
    return {name.lower().replace("_", "-") for name in names}


def test_every_library_the_bot_imports_is_declared() -> None:
    distributions = packages_distributions()
    wanted = declared()
    missing = {}
    for module, files in imports().items():
        top = module.split(".")[0]
        if top in FIRST_PARTY or top in sys.stdlib_module_names:
            continue
        dists = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
        if not dists & wanted:
            missing[module] = sorted(files)
    assert missing == {}


def test_nothing_private_of_a_library_is_imported() -> None:
    private = {
        module: sorted(files)
        for module, files in imports().items()
        if module.split(".")[0] not in FIRST_PARTY | {"__future__"}
        and any(part.startswith("_") for part in module.split("."))
    }
    assert private == {}
