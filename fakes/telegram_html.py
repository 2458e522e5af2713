"""Telegram's HTML parse mode, parsed as strictly as the Bot API does.

Returns the plain text and its entities, or raises `HtmlError` with the Bot API's wording
("Can't parse entities: …"). Only the tags and named entities Telegram documents are
accepted; anything else, an unclosed tag or a stray `<`, is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_CANT = "Can't parse entities:"
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_VALUE = r"""(?:"[^"]*"|'[^']*'|[^\s>]+)"""
_TAG = re.compile(rf"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*{_VALUE})?)*)\s*>")
_ATTR = re.compile(rf"([a-zA-Z-]+)(?:\s*=\s*({_VALUE}))?")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]+);")


class HtmlError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Parsed:
    text: str
    entities: list[dict[str, object]]


def utf16_len(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


def parse_html(source: str) -> Parsed:
    out: list[str] = []
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[dict[str, object]] = []
    position = 0
    while position < len(source):
        char = source[position]
        if char == "<":
            match = _TAG.match(source, position)
            if not match:
                raise HtmlError(
                    f"Can't parse entities: unsupported start tag at byte offset {position}"
                )
            closing, name, raw_attrs = match.group(1) == "/", match.group(2).lower(), match.group(3)
            if name not in _TAG_ENTITY:
                raise HtmlError(f"{_CANT} unsupported start tag {name!r} at byte offset {position}")
            offset = utf16_len("".join(out))
            if closing:
                if not stack or stack[-1][0] != name:
                    raise HtmlError(
                        f"Can't parse entities: unmatched end tag at byte offset {position}, "
                        f'expected "</{stack[-1][0] if stack else ""}>", found "</{name}>"'
                    )
                open_name, start, attrs = stack.pop()
                if offset > start:
                    entity: dict[str, object] = {
                        "type": _TAG_ENTITY[open_name],
                        "offset": start,
                        "length": offset - start,
                    }
                    if open_name == "a":
                        entity["url"] = attrs.get("href", "")
                    entities.append(entity)
            else:
                attrs = {key.lower(): value.strip("\"'") for key, value in _ATTR.findall(raw_attrs)}
                if name == "a" and "href" not in attrs:
                    raise HtmlError("Can't parse entities: a tag without href")
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise HtmlError(
                        f"{_CANT} unsupported start tag 'span' at byte offset {position}"
                    )
                stack.append((name, offset, attrs))
            position = match.end()
        elif char == "&":
            match = _ENTITY.match(source, position)
            if not match:
                raise HtmlError(
                    f"Can't parse entities: character entity expected at byte offset {position}"
                )
            body = match.group(1)
            if body.startswith("#x"):
                out.append(chr(int(body[2:], 16)))
            elif body.startswith("#"):
                out.append(chr(int(body[1:])))
            elif body in _NAMED:
                out.append(_NAMED[body])
            else:
                raise HtmlError(
                    f'Can\'t parse entities: unsupported HTML entity "&{body};" at byte offset '
                    f"{position}"
                )
            position = match.end()
        elif char == ">":
            raise HtmlError(f"Can't parse entities: unexpected end tag at byte offset {position}")
        else:
            out.append(char)
            position += 1
    if stack:
        raise HtmlError(f"{_CANT} can't find end tag corresponding to start tag {stack[-1][0]!r}")
    return Parsed("".join(out), sorted(entities, key=lambda e: int(str(e["offset"]))))
