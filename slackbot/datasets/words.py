"""How a reason names a value from the file: short, quoted as JSON, with its JSON type in words."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

_QUOTE_MAX: Final = 40


def joined(keys: Sequence[str]) -> str:
    """ "a", "b" and "c"."""
    quoted = [quote(k) for k in keys]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def quote(value: Any) -> str:
    """A value from the file as a short JSON literal: strings quoted, anything else as written."""
    if isinstance(value, str):
        return json.dumps(clip(value, _QUOTE_MAX), ensure_ascii=False)
    try:
        return clip(json.dumps(value, ensure_ascii=False), _QUOTE_MAX)
    except (TypeError, ValueError, RecursionError):
        return type_name(value)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def a_type(value: Any) -> str:
    """A value's JSON type with its article: "a string", "an array", "null"."""
    kind = type_name(value)
    return kind if kind == "null" else ("an " if kind[0] in "aeiou" else "a ") + kind


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
