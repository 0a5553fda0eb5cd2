"""The /finetune form: a backend's form declaration, modal metadata, the typed-in state, and validation into a
`FineTuneSpec`."""

from slackbot.backends.checks import (
    MAX_BATCH_SIZE,
    SLUG_RULE,
    AnyOf,
    check_batch_size,
    check_number,
    check_slug,
    suggest_slug,
)
from slackbot.backends.form import (
    Choice,
    FormDeclaration,
    FormField,
    Kind,
    choice_of,
    default_option,
    state_option,
    state_toggle,
    visible_fields,
)
from slackbot.forms.metadata import PRIVATE_METADATA_LIMIT, MetadataError, ModalMetadata
from slackbot.forms.model import FormContext, FormErrors, parse_form
from slackbot.forms.state import (
    FormState,
    FormValue,
    field_action_id,
    field_block_id,
    form_state_from_view,
)

__all__ = [
    "MAX_BATCH_SIZE",
    "PRIVATE_METADATA_LIMIT",
    "SLUG_RULE",
    "AnyOf",
    "Choice",
    "FormContext",
    "FormDeclaration",
    "FormErrors",
    "FormField",
    "FormState",
    "FormValue",
    "Kind",
    "MetadataError",
    "ModalMetadata",
    "check_batch_size",
    "check_number",
    "check_slug",
    "choice_of",
    "default_option",
    "field_action_id",
    "field_block_id",
    "form_state_from_view",
    "parse_form",
    "state_option",
    "state_toggle",
    "suggest_slug",
    "visible_fields",
]
