"""Turn the text after a command into a validated request, or say what is wrong.

Pure functions: no Telegram objects, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.constants import ASPECT_RATIOS, DEFAULT_ASPECT_RATIO, MAX_PROMPT_CHARS


@dataclass(frozen=True, slots=True)
class ImagineRequest:
    prompt: str
    aspect_ratio: str


@dataclass(frozen=True, slots=True)
class ParseError:
    """Why the input was refused: a catalog key and its parameters."""

    key: str
    params: dict[str, object]


# `--ar 3:2`, `--ar=3:2`, and the em/en dash that phones substitute for `--` (`—ar 3:2`).
# The flag must stand alone (start of text or after white space) so "foo--ar" stays prompt.
_RATIO_FLAG = re.compile(r"(?:(?<=\s)|^)(?:--|—|–)ar(?:(?:=|[ \t]+)(?P<value>[^\s]+))?(?=\s|$)")


def parse_imagine(
    text: str,
    default_ratio: str = DEFAULT_ASPECT_RATIO,
    allowed: tuple[str, ...] = ASPECT_RATIOS,
) -> ImagineRequest | ParseError:
    """Parse `<prompt> [--ar W:H]`; the prompt keeps every character but the flag.

    `allowed`: the ratios the upstream takes; none means it picks the shape itself (the
    ratio is then "")."""
    matches = list(_RATIO_FLAG.finditer(text))
    if len(matches) > 1:
        return ParseError("error.repeated_ratio", {})
    fallback = allowed[0] if allowed else ""  # "": the upstream picks the shape
    aspect_ratio = default_ratio if default_ratio in allowed else fallback
    if matches:
        match = matches[0]
        value = match.group("value")
        if not allowed:
            return ParseError("error.ratio_unsupported", {})
        if value is None:
            return ParseError("error.missing_ratio", {"allowed": ", ".join(allowed)})
        if value not in allowed:
            return ParseError("error.bad_ratio", {"value": value, "allowed": ", ".join(allowed)})
        aspect_ratio = value
        before, after = text[: match.start()].rstrip(" \t"), text[match.end() :].lstrip(" \t")
        text = f"{before} {after}" if before and after else before + after
    prompt = text.strip()
    if not prompt:
        return ParseError("error.empty_prompt", {})
    if len(prompt) > MAX_PROMPT_CHARS:
        return ParseError(
            "error.prompt_too_long", {"length": len(prompt), "limit": MAX_PROMPT_CHARS}
        )
    return ImagineRequest(prompt=prompt, aspect_ratio=aspect_ratio)
