"""Field rules the forms share: numbers, batch sizes, slugs (each raising a `form` error with its message), and the
checks a backend's form rows are built from (`number_check`, `whole_check`, `pattern_check`)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Container
from dataclasses import dataclass
from typing import Final, Literal

from pydantic_core import PydanticCustomError

from slackbot.backends.form import Check

# --- field rules --------------------------------------------------------------------------------------------
# Blank always means "the service's default"; bounds are guards against typos (an extra zero, a stray
# character), wide enough for any sensible run.

MAX_BATCH_SIZE: Final = 1024
SLUG_RULE: Final = "3 to 64 lowercase letters, digits and -"
# An existing model's slug (`status`, `track`): OpenPipe's web UI allowed capitals too (shared/openpipe/NOTES.md).
# Nothing else may pass: a slug is a URL path segment, and `.` or `..` would reach other endpoints.
MODEL_SLUG_RULE: Final = "letters, digits and - (at most 128)"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_WHOLE = re.compile(r"\+?\d+")
_SLUG = re.compile(r"[a-z0-9-]+")
_MODEL_SLUG = re.compile(r"[A-Za-z0-9-]{1,128}")
_LIST_SEPARATOR = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class AnyOf:
    """Membership in any of several containers, without copying them: a project may hold thousands of slugs, and
    a workspace's own are looked up in the database one at a time."""

    parts: tuple[Container[str], ...]

    def __contains__(self, item: object) -> bool:
        return any(item in part for part in self.parts)


def form_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("form", message)


def is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def check_number(
    raw: object, message: str, *, low: float, high: float, low_open: bool = False, whole: bool = False
) -> float | None:
    """Blank → None; otherwise a finite number within bounds, or a `form` error carrying `message`."""
    if is_blank(raw):
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        value = float(raw.strip())
    else:
        raise form_error(message + ".")
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high or (whole and not value.is_integer()):
        raise form_error(message + ".")
    return value


def number_check(what: str, low: float, high: float, example: str, *, low_open: bool = False) -> Check:
    """A row's check: blank, or a number from `low` (excluded when `low_open`) to `high`; the message says so."""
    above = "greater than" if low_open else "at least"
    message = f"{what} must be a number {above} {low:g} and at most {high:g} (e.g. {example})"
    return lambda raw, choice: check_number(raw, message, low=low, high=high, low_open=low_open)


def whole_check(what: str, low: int, high: int) -> Check:
    """A row's check: blank, or a whole number from `low` to `high` (as an int)."""
    message = f"{what} must be a whole number from {low} to {high}"

    def check(raw: object, choice: object) -> int | None:
        value = check_number(raw, message, low=low, high=high, whole=True)
        return None if value is None else int(value)

    return check


def pattern_check(pattern: re.Pattern[str], message: str) -> Check:
    """A row's check: blank, or one word matching `pattern` whole (kept without the spaces around it)."""

    def check(raw: object, choice: object) -> str | None:
        if is_blank(raw):
            return None
        if not isinstance(raw, str) or not pattern.fullmatch(raw.strip()):
            raise form_error(message)
        return raw.strip()

    return check


def split_list(text: str) -> tuple[str, ...]:
    """The items of a list typed as text, separated by commas, spaces or new lines: each once, in order."""
    return tuple(dict.fromkeys(part for part in _LIST_SEPARATOR.split(text) if part))


def check_batch_size(raw: object, *, allow_auto: bool, label: str, no_auto: str = "") -> int | Literal["auto"] | None:
    if is_blank(raw):
        return None
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        if allow_auto:
            return "auto"
        raise form_error(f'{label} must be a whole number from 1 to {MAX_BATCH_SIZE}: {no_auto} does not take "auto".')
    if isinstance(raw, int) and not isinstance(raw, bool):
        value: int | None = raw
    elif isinstance(raw, str) and _WHOLE.fullmatch(raw.strip()) and len(raw.strip()) < 10:
        value = int(raw.strip())
    else:
        value = None
    if value is None or not 1 <= value <= MAX_BATCH_SIZE:
        allowed = '"auto" or a whole number' if allow_auto else "a whole number"
        raise form_error(f"{label} must be {allowed} from 1 to {MAX_BATCH_SIZE}.")
    return value


def check_slug(raw: object, base_model_names: Collection[str], taken: Container[str]) -> str:
    """A valid, free slug, or a `form` error naming the rule that failed."""
    if not isinstance(raw, str) or not raw.strip():
        raise form_error(f"Enter a slug, the name the model will be called by: {SLUG_RULE}.")
    slug = raw.strip()
    if len(slug) < 3:
        raise form_error(f"The slug is too short ({len(slug)} characters): use {SLUG_RULE}.")
    if len(slug) > 64:
        raise form_error(f"The slug is too long ({len(slug)} characters): use {SLUG_RULE}.")
    if not _SLUG.fullmatch(slug):
        if _SLUG.fullmatch(slug.lower()):
            raise form_error(f'The slug must be lowercase: try "{slug.lower()}".')
        bad = "".join(sorted({c for c in slug if not _SLUG.fullmatch(c)}))[:10]
        raise form_error(f'The slug may contain only lowercase letters, digits and -, not "{bad}".')
    if slug in {name.lower() for name in base_model_names}:
        raise form_error(f'"{slug}" is the name of a base model: choose a different slug.')
    if slug in taken:
        raise form_error(f'"{slug}" is already taken by another model: choose a different slug.')
    return slug


def is_model_slug(text: str) -> bool:
    """Whether `text` can name an existing model (see MODEL_SLUG_RULE)."""
    return _MODEL_SLUG.fullmatch(text) is not None


def suggest_slug(dataset_name: str, taken: Container[str] = (), reserved: Collection[str] = ()) -> str:
    """A valid slug derived from a dataset name ("Support tickets v2" → "support-tickets-v2-ft"), neither taken
    nor one of the `reserved` names (the backend's base models)."""
    reserved_lower = {name.lower() for name in reserved}
    ascii_name = unicodedata.normalize("NFKD", dataset_name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:55].strip("-") or "model"
    slug, n = f"{base}-ft", 1
    while slug in reserved_lower or slug in taken:
        n += 1
        slug = f"{base}-ft-{n}"
    return slug
