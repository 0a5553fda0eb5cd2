"""The /finetune form: modal metadata, the typed-in state, field rules, and validation into a `FineTuneSpec`."""

from slackbot.forms.metadata import PRIVATE_METADATA_LIMIT, MetadataError, ModalMetadata
from slackbot.forms.model import KNOWN_BASE_MODELS, FineTuneForm, FormContext, FormErrors, parse_form
from slackbot.forms.rules import (
    MAX_BATCH_SIZE,
    MAX_PRUNING_RULES,
    SLUG_RULE,
    AnyOf,
    check_batch_size,
    check_number,
    check_pruning_rule_ids,
    check_slug,
    suggest_slug,
)
from slackbot.forms.state import (
    TEXT_FIELDS,
    TOGGLE_FIELDS,
    FormState,
    FormValue,
    field_action_id,
    field_block_id,
    form_state_from_view,
    state_provider,
    state_toggle,
    visible_fields,
)

__all__ = [
    "KNOWN_BASE_MODELS",
    "MAX_BATCH_SIZE",
    "MAX_PRUNING_RULES",
    "PRIVATE_METADATA_LIMIT",
    "SLUG_RULE",
    "TEXT_FIELDS",
    "TOGGLE_FIELDS",
    "AnyOf",
    "FineTuneForm",
    "FormContext",
    "FormErrors",
    "FormState",
    "FormValue",
    "MetadataError",
    "ModalMetadata",
    "check_batch_size",
    "check_number",
    "check_pruning_rule_ids",
    "check_slug",
    "field_action_id",
    "field_block_id",
    "form_state_from_view",
    "parse_form",
    "state_provider",
    "state_toggle",
    "suggest_slug",
    "visible_fields",
]
