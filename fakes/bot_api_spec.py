"""Hold a Bot API call against Telegram's own tables (Bot API 10.1, api-10.1.min.json).

`check_call` lists what is wrong with a call: an unknown method, an unknown parameter or
field, a required one missing, a value of the wrong type, recursively through objects, arrays
and abstract types (InputMedia, InlineQueryResult, …). Parameters come as the fake server reads
them: top-level values from a form or multipart body are text ("123", "true", JSON for objects
and arrays), from a JSON body real JSON values, uploads are bytes. Inside JSON the types are
strict: an Integer is a JSON number, not "123".
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The tables, kept beside this module (see its README).
SPEC_PATH = Path(__file__).resolve().parent / "telegram-bot-api" / "api-10.1.min.json"

_ARRAY = "Array of "
_SCALARS = frozenset({"Integer", "Float", "Boolean", "String", "InputFile"})
_BOOLEAN_TEXT = frozenset({"true", "false", "True", "False"})
_INTEGER_TEXT = re.compile(r"-?\d+")
# How a subtype names itself: InputMediaPhoto's type "must be photo", ChatMemberBanned's
# status 'always "kicked"', PassportElementErrorFile's source "must be file".
_TAG = re.compile(r'(?:must be|always) "?([a-z0-9_]+)"?\s*$')

Field = dict[str, Any]


@dataclass(frozen=True)
class _Spec:
    methods: dict[str, tuple[str, list[Field]]]  # lower-case name -> (name, parameters)
    types: dict[str, dict[str, Any]]
    tags: dict[str, tuple[str, str]]  # subtype -> (field, value), e.g. ("type", "photo")


@functools.cache
def _load(path: Path) -> _Spec:
    data = json.loads(path.read_text(encoding="utf-8"))
    types: dict[str, dict[str, Any]] = data["types"]
    tags: dict[str, tuple[str, str]] = {}
    subtypes = {name for t in types.values() for name in t.get("subtypes", [])}
    for name in subtypes & types.keys():
        for field in types[name].get("fields", []):
            if match := _TAG.search(field["description"]):
                tags[name] = (field["name"], match[1])
                break
    methods = {name.lower(): (name, m.get("fields", [])) for name, m in data["methods"].items()}
    return _Spec(methods, types, tags)


def _spec() -> _Spec:
    return _load(SPEC_PATH)


def check_call(method: str, params: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    """Problems with this call, each one line (empty list: the call is as the Bot API has it)."""
    spec = _spec()
    if (entry := spec.methods.get(method.lower())) is None:
        return [f"{method}: unknown method"]
    name, fields = entry
    known = {field["name"] for field in fields}
    # An upload that is no parameter is an attachment, referred to as attach://<key>.
    problems = [
        f"unknown parameter {key!r}" for key in params if key not in known and key not in files
    ]
    for field in fields:
        key = field["name"]
        if key in params:
            problems += _check(spec, params[key], tuple(field["types"]), key, top=True)
        elif field["required"]:
            problems.append(f"missing required parameter {key!r}")
    return [f"{name}: {problem}" for problem in problems]


def _check(spec: _Spec, value: Any, union: tuple[str, ...], path: str, top: bool) -> list[str]:
    """Problems with value as one of the type expressions in union."""
    fitting = [(t, v) for t in union if _fits(spec, v := _decode(value, t, top), t, top)]
    if not fitting:
        return [f"{path}: expected {' or '.join(union)}, got {_describe(value)}"]
    if len(fitting) > 1 and all(t.startswith(_ARRAY) for t, _ in fitting):
        # Arrays of alternatives take a mix: sendMediaGroup's media has photos and videos.
        items = tuple(t.removeprefix(_ARRAY) for t, _ in fitting)
        return _check_items(spec, fitting[0][1], items, path)
    tagged = [(t, v) for t, v in fitting if t in spec.tags and isinstance(v, dict)]
    if tagged and (key := spec.tags[tagged[0][0]][0]) in (obj := tagged[0][1]):
        # Pick by tag ("type": "photo"), maybe shared: InlineQueryResultPhoto and …CachedPhoto.
        fitting = [(t, v) for t, v in fitting if spec.tags.get(t) == (key, obj[key])]
        if not fitting:
            allowed = ", ".join(dict.fromkeys(repr(spec.tags[t][1]) for t, _ in tagged))
            return [f"{path}.{key}: expected one of {allowed}, got {_describe(obj[key])}"]
    results = []
    for t, v in fitting:
        if not (problems := _check_one(spec, v, t, path)):
            return []
        results.append((_misfit(spec, v, t), len(problems), problems))
    # Report against the alternative the value seems meant to be.
    return min(results, key=lambda result: result[:2])[2]


def _fits(spec: _Spec, value: Any, t: str, top: bool) -> bool:
    """Whether value has the outward shape of type t (fields and items not looked at)."""
    if t.startswith(_ARRAY):
        return isinstance(value, list)
    if t == "Integer":
        if top and isinstance(value, str):
            return _INTEGER_TEXT.fullmatch(value) is not None
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "Float":
        if top and isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return False
            return True
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "Boolean":
        return isinstance(value, bool) or (
            top and isinstance(value, str) and value in _BOOLEAN_TEXT
        )
    if t == "String":
        # At top level every value travels as text: a JSON body's 42 reads as "42".
        scalar = isinstance(value, int | float) and not isinstance(value, bool)
        return isinstance(value, str) or (top and scalar)
    if t == "InputFile":
        return isinstance(value, bytes)
    if subtypes := spec.types[t].get("subtypes"):
        return any(_fits(spec, value, subtype, top=False) for subtype in subtypes)
    return isinstance(value, dict)


def _check_one(spec: _Spec, value: Any, t: str, path: str) -> list[str]:
    """Problems with value as type t, which it fits (see _fits)."""
    if t.startswith(_ARRAY):
        return _check_items(spec, value, (t.removeprefix(_ARRAY),), path)
    if t in _SCALARS:
        return []
    definition = spec.types[t]
    if "subtypes" in definition:
        return _check(spec, value, tuple(definition["subtypes"]), path, top=False)
    return _check_object(spec, value, definition.get("fields", []), path)


def _check_items(spec: _Spec, items: list[Any], union: tuple[str, ...], path: str) -> list[str]:
    return [
        problem
        for index, item in enumerate(items)
        for problem in _check(spec, item, union, f"{path}[{index}]", top=False)
    ]


def _check_object(spec: _Spec, value: dict[str, Any], fields: list[Field], path: str) -> list[str]:
    known = {field["name"] for field in fields}
    problems = [f"{path}.{key}: unknown field" for key in value if key not in known]
    for field in fields:
        key = field["name"]
        if key in value:
            problems += _check(spec, value[key], tuple(field["types"]), f"{path}.{key}", False)
        elif field["required"]:
            problems.append(f"{path}.{key}: missing required field")
    return problems


def _misfit(spec: _Spec, value: Any, t: str) -> int:
    """How far a JSON object is from object type t at its own level: keys unknown or missing."""
    definition = spec.types.get(t, {})
    if not isinstance(value, dict) or "fields" not in definition:
        return 0
    fields = definition["fields"]
    known = {field["name"] for field in fields}
    missing = [field for field in fields if field["required"] and field["name"] not in value]
    return len(value.keys() - known) + len(missing)


def _decode(value: Any, t: str, top: bool) -> Any:
    """A top-level object or array comes from a form as JSON text: the value it holds."""
    if top and isinstance(value, str) and t not in _SCALARS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"str {value if len(value) <= 40 else value[:37] + '...'!r}"
    if isinstance(value, bytes):
        return f"an upload of {len(value)} bytes"
    return type(value).__name__
