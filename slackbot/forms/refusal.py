"""The service's refusal of a create, placed under the field it is about when that is clear.

On "Edit and retry" the modal is reopened with what was typed; the service's reason for refusing it is shown
under the field it names (a taken slug under the slug, a wire path such as `trainingConfig.sft_hyperparameters.
num_epochs` under "Epochs"), and anything not clearly about one field at the top of the form. Which words name
which field is the backend's form's to say (each row's `wire`, tried by `wire_rank`). The service's words are
shown verbatim: they are the only precise account of what it wants.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from slackbot.backends.form import FormDeclaration

TOP: Final = "service"  # the key of what is shown at the top of the form

_RULES: dict[int, tuple[tuple[re.Pattern[str], str], ...]] = {}


def refusal_rules(form: FormDeclaration) -> tuple[tuple[re.Pattern[str], str], ...]:
    """(pattern, field) in the order they are tried: by rank, then as declared; the first that matches wins."""
    found = _RULES.get(id(form))
    if found is None:
        ranked = [(row.wire_rank, pattern, row.id) for row in form.fields for pattern in row.wire]
        ranked += [(rank, pattern, name) for pattern, name, rank in form.core_wire]
        ranked.sort(key=lambda rule: rule[0])  # stable: declaration order within a rank
        found = _RULES[id(form)] = tuple((re.compile(p, re.IGNORECASE), name) for _, p, name in ranked)
    return found


def field_of(form: FormDeclaration, text: str) -> str | None:
    """The form field `text` is clearly about, or None."""
    for pattern, name in refusal_rules(form):
        if pattern.search(text):
            return name
    return None


def refusal_errors(form: FormDeclaration, message: str, issues: Sequence[str] = ()) -> dict[str, str]:
    """field → what the service said about it, plus `TOP` → a headline and whatever names no field."""
    placed: dict[str, list[str]] = {}
    for text in list(issues) or [message]:
        placed.setdefault(field_of(form, text) or TOP, []).append(text)
    errors = {name: " · ".join(texts) for name, texts in placed.items() if name != TOP}
    rest = placed.get(TOP, [])
    if issues:
        rest.insert(0, message)
    headline = f"{form.service} refused the last attempt"
    if rest:
        errors[TOP] = f"{headline}: {' · '.join(rest)}" + (" (and see below)" if errors else "")
    else:
        errors[TOP] = f"{headline}: see the fields marked below."
    return errors
