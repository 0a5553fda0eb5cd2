"""The service's refusal of a create, placed under the field it is about when that is clear.

On "Edit and retry" the modal is reopened with what was typed; OpenPipe's reason for refusing it is shown under
the field it names (a taken slug under the slug, a wire path such as `trainingConfig.sft_hyperparameters.
num_epochs` under "Epochs"), and anything not clearly about one field at the top of the form. The service's
words are shown verbatim: they are the only precise account of what it wants.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

TOP: Final = "service"  # the key of what is shown at the top of the form

# (pattern, field). Wire names first (precise), then phrases of the server's messages. For hyperparameters the
# path says whether it is about SFT or preference tuning; the first rule that matches wins.
_PREFERENCE = r"(preference|dpo)[a-z_]*\.[a-z_.]*"
_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE), field)
    for pattern, field in (
        (_PREFERENCE + r"num_epochs|" + _PREFERENCE + r"n_epochs", "dpo_epochs"),
        (_PREFERENCE + r"batch_size", "dpo_batch_size"),
        (_PREFERENCE + r"learning_rate_multiplier", "dpo_lr_multiplier"),
        (_PREFERENCE + r"(training_)?beta", "dpo_beta"),
        (_PREFERENCE + r"adapter_weight", "dpo_adapter_weight"),
        (r"\b(dpo_variant|variant)\b", "dpo_variant"),
        (r"\b(num_epochs|n_epochs|epochCount)\b", "sft_epochs"),
        (r"\bbatch_size\b", "sft_batch_size"),
        (r"\blearning_rate_multiplier\b", "sft_lr_multiplier"),
        (r"\blearning_rate\b", "sft_learning_rate"),
        (r"\benable_preference_tuning\b", "enable_dpo"),
        (r"\benable_sft\b", "enable_sft"),
        (r"\bdefault_?temperature\b|\btemperature\b", "default_temperature"),
        (r"\bpruning_?rule", "pruning_rule_ids"),
        (r"\bbase_?model\b", "base_model"),
        (r"\bprovider\b", "provider"),
        (r"\bdataset", "dataset"),
        (r"\bslug\b|fine tune ids?\b", "slug"),
    )
)


def field_of(text: str) -> str | None:
    """The form field `text` is clearly about, or None."""
    for pattern, field in _RULES:
        if pattern.search(text):
            return field
    return None


def refusal_errors(message: str, issues: Sequence[str] = ()) -> dict[str, str]:
    """field → what the service said about it, plus `TOP` → a headline and whatever names no field."""
    placed: dict[str, list[str]] = {}
    for text in list(issues) or [message]:
        placed.setdefault(field_of(text) or TOP, []).append(text)
    errors = {field: " · ".join(texts) for field, texts in placed.items() if field != TOP}
    rest = placed.get(TOP, [])
    if issues:
        rest.insert(0, message)
    headline = "OpenPipe refused the last attempt"
    if rest:
        errors[TOP] = f"{headline}: {' · '.join(rest)}" + (" (and see below)" if errors else "")
    else:
        errors[TOP] = f"{headline}: see the fields marked below."
    return errors
