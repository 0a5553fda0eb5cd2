"""The /finetune modal, the dataset picker's options, and a checker for the view limits Slack enforces.

Pure functions: the listeners call `finetune_modal` for views.open / views.update and `dataset_options` /
`options_error` to answer the dataset picker's options requests.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    ExternalDataSelectElement,
    InputBlock,
    InputInteractiveElement,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from slackbot import ids
from slackbot.backends.base import Dataset
from slackbot.backends.form import BASE_MODEL, DATASET, SLUG
from slackbot.forms import (
    Choice,
    FormDeclaration,
    FormField,
    FormState,
    Kind,
    ModalMetadata,
    choice_of,
    field_block_id,
    state_toggle,
    suggest_slug,
    visible_fields,
)
from slackbot.text import clip, mrkdwn, plain

TITLE: Final = "Start a fine-tune"
TITLE_RETRY: Final = "Edit and retry"
SUBMIT: Final = "Start training"
CLOSE: Final = "Cancel"
MAX_OPTIONS: Final = 100  # Slack's limit for a static_select and for one options response
OPTION_TEXT_MAX: Final = 75
OPTION_VALUE_MAX: Final = 150
_PLAIN_NUMBER: Final = re.compile(r"[0-9]{1,3}(\.[0-9]{1,10})?")
_LABEL_SEPARATOR: Final = " · "  # between a dataset's name and its entry count in the option text


def _option(text: str, value: str) -> Option:
    # Option texts are plain_text: shown as typed, so redacted and clipped, not escaped.
    return Option(text=plain(text, OPTION_TEXT_MAX, one_line=True), value=value[:OPTION_VALUE_MAX])


def _text(state: Mapping[str, object], name: str) -> str | None:
    value = state.get(name)
    return value if isinstance(value, str) and value else None


def dataset_label(dataset: Dataset) -> str:
    entries = f"{dataset.entry_count:,} entr{'y' if dataset.entry_count == 1 else 'ies'}"
    suffix = _LABEL_SEPARATOR + entries
    return plain(dataset.name, OPTION_TEXT_MAX - len(suffix), one_line=True) + suffix


def dataset_name_from_label(label: str) -> str:
    """The dataset's name (possibly shortened) from an option text made by `dataset_label`."""
    return label.rsplit(_LABEL_SEPARATOR, 1)[0]


def dataset_option(dataset: Dataset) -> dict[str, Any]:
    """The option for one dataset, as `initial_dataset_option` and in options responses."""
    return _option(dataset_label(dataset), dataset.id).to_dict()


def dataset_options(datasets: Sequence[Dataset], query: str) -> list[dict[str, Any]]:
    """Options for the dataset picker: name (or id) contains `query`, case-insensitive; at most 100."""
    needle = query.strip().casefold()
    found = [d for d in datasets if needle in d.name.casefold() or needle == d.id.casefold()]
    return [dataset_option(d) for d in found[:MAX_OPTIONS]]


def options_error(message: str) -> list[dict[str, Any]]:
    """A single option that says what went wrong; the form rejects its value with a clear message."""
    return [_option("⚠ " + message, ids.OPTION_ERROR_VALUE).to_dict()]


def _initial_dataset(state: Mapping[str, object], given: Mapping[str, Any] | None) -> tuple[Option, str] | None:
    """The dataset option to show as chosen, and its text (for the slug suggestion)."""
    if given is not None:
        text, value = given.get("text"), given.get("value")
        label = text.get("text") if isinstance(text, Mapping) else text
        if isinstance(label, str) and isinstance(value, str):
            return _option(label, value), label
    dataset, label = _text(state, "dataset"), _text(state, "dataset_label")
    if dataset and label and dataset != ids.OPTION_ERROR_VALUE:
        return _option(label, dataset), label
    return None


def _input(
    form: FormDeclaration, name: str, option: str | None, label: str, element: InputInteractiveElement, **kw: Any
) -> InputBlock:
    return InputBlock(block_id=field_block_id(form, name, option), label=label, element=element, **kw)


def _row_block(form: FormDeclaration, row: FormField, choice: Choice, state: Mapping[str, object]) -> InputBlock:
    """The input of one declared row, refilled from `state`."""
    initial = _text(state, row.id)
    placeholder = row.placeholder_for(choice) or None
    element: InputInteractiveElement
    kw: dict[str, Any] = {"optional": None if row.required else True}
    if row.kind is Kind.TOGGLE:
        option = Option(text=row.toggle_text or row.label, value=ids.CHECKED)
        on = state_toggle(form, state, row.id)
        element = CheckboxesElement(action_id=row.action_id, options=[option], initial_options=[option] if on else None)
        # optional: an unticked box is a valid answer, not a missing one; a switch redraws the modal.
        kw = {"optional": True, "dispatch_action": True}
    elif row.kind is Kind.SELECT:
        options = [_option(text, value) for value, text in row.options]
        chosen_value = choice.option if row.id == form.option else initial
        chosen = next((o for o in options if o.value == chosen_value), None)
        element = StaticSelectElement(
            action_id=row.action_id, placeholder=placeholder or "Choose…", options=options, initial_option=chosen
        )
        if row.id == form.option:
            kw["dispatch_action"] = True  # another option redraws the modal with its fields
    elif row.kind is Kind.NUMBER:
        high = float(row.high) if row.high is not None else None
        # Slack refuses the whole view if an initial value is not a plain number within min..max.
        ok = (
            initial is not None
            and _PLAIN_NUMBER.fullmatch(initial) is not None
            and (high is None or float(initial) <= high)
        )
        element = NumberInputElement(
            action_id=row.action_id,
            is_decimal_allowed=True,
            min_value=row.low,
            max_value=row.high,
            initial_value=initial if ok else None,
            placeholder=placeholder,
        )
    else:
        element = PlainTextInputElement(
            action_id=row.action_id,
            multiline=True if row.kind is Kind.LONG_TEXT else None,
            placeholder=placeholder,
            initial_value=initial[:3000] if initial else None,
        )
    if row.hint:
        kw["hint"] = row.hint
    return _input(form, row.id, choice.option, row.label, element, **kw)


def _field_block(
    form: FormDeclaration,
    name: str,
    choice: Choice,
    state: Mapping[str, object],
    base_models: Sequence[str],
    dataset: tuple[Option, str] | None,
) -> list[Block]:
    option = choice.option
    if name == DATASET:
        picker = ExternalDataSelectElement(
            action_id=ids.ACTION_DATASET,
            placeholder="Search datasets",
            min_query_length=0,
            initial_option=dataset[0] if dataset else None,
        )
        # dispatch_action: picking a dataset redraws the modal so the slug field can suggest a name from it.
        return [_input(form, name, option, "Dataset", picker, dispatch_action=True)]
    if name == BASE_MODEL:
        models = list(dict.fromkeys(m for m in base_models if m and len(m) <= OPTION_VALUE_MAX))[:MAX_OPTIONS]
        options = [_option(m, m) for m in models] or [
            _option(f"⚠ No base models available for {form.label_of(option)}", ids.OPTION_ERROR_VALUE)
        ]
        chosen = next((o for o in options if o.value == _text(state, BASE_MODEL)), None)
        element = StaticSelectElement(
            action_id=ids.ACTION_BASE_MODEL, placeholder="Choose…", options=options, initial_option=chosen
        )
        return [_input(form, name, option, "Base model", element)]
    if name == SLUG:
        initial = _text(state, SLUG)
        placeholder = "lowercase letters, digits and -"
        if dataset is not None and dataset[0].value != ids.OPTION_ERROR_VALUE:
            suggestion = suggest_slug(dataset_name_from_label(dataset[1]), reserved=form.reserved_names)
            # Slack may keep an untouched input's (empty) state over a new initial_value on views.update, so
            # the placeholder shows the suggestion too, and a blank slug means "use it" (see forms/model.py).
            placeholder = f"blank = {suggestion}"[:150]
            initial = initial if initial is not None else suggestion
        slug_input = PlainTextInputElement(
            action_id=ids.ACTION_SLUG,
            placeholder=placeholder,
            initial_value=initial[:3000] if initial else None,
            max_length=64,
        )
        hint = "The new model's name, used to call it: 3 to 64 characters. Blank: suggested from the dataset."
        return [_input(form, name, option, "Model slug", slug_input, hint=hint, optional=True)]
    row = form.get(name)
    assert row is not None, f"{name} is not a field of {form.backend}'s form"
    block = _row_block(form, row, choice, state)
    return [_divider(), block] if row.divider else [block]


def _divider() -> DividerBlock:
    return DividerBlock()


def _error_block(errors: Mapping[str, str]) -> SectionBlock:
    # The service's words (a refusal shown on "Edit and retry"): inert mrkdwn, however many there are.
    budget = max(100, 2990 // max(1, len(errors)))
    lines = "\n".join(f"⚠ {mrkdwn(message, budget)}" for message in errors.values())
    return SectionBlock(block_id=ids.BLOCK_FORM_ERRORS, text=MarkdownTextObject(text=clip(lines, 3000)))


def _field_error(message: str) -> ContextBlock:
    """A refusal about the field just above (Slack shows field errors itself only in answer to a submission)."""
    return ContextBlock(elements=[MarkdownTextObject(text=f"⚠ {mrkdwn(message, 2990)}")])


def finetune_modal(
    metadata: ModalMetadata,
    state: FormState | None,
    *,
    form: FormDeclaration,
    option: str | None,
    base_models: list[str],
    initial_dataset_option: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    backends: Sequence[tuple[str, str]] = (),
    dataset_file: bool = False,
) -> dict[str, Any]:
    """The modal as view JSON. `option` (the backend's option value) wins over the state's (the listener reads
    the new choice).

    `errors` (e.g. the service's refusal on "Edit and retry"): a message keyed by a field shown in this view goes
    right under that field; every other one at the top of the view. `backends` (name, display name): with more
    than one, the modal starts with a choice of backend (`form`'s selected). `dataset_file` (the backend uploads
    datasets): a file input for one .jsonl under the dataset picker, which becomes optional.
    """
    retry = metadata.origin == "retry"
    if not state and not errors and initial_dataset_option is None:
        # The blank form (every /finetune) differs only in its metadata: built once per option and model list.
        view: dict[str, Any] = json.loads(_blank_view(form, option, tuple(base_models), retry, dataset_file))
    else:
        view = _view(form, state, option, base_models, initial_dataset_option, errors, retry, dataset_file)
    if len(backends) > 1:
        view["blocks"].insert(0, _backend_block(form.backend, backends).to_dict())
    if dataset_file and metadata.shared_file_name:
        _with_shared_file(view, metadata.shared_file_name)
    view["private_metadata"] = metadata.encode()
    return view


def _backend_block(chosen: str, backends: Sequence[tuple[str, str]]) -> InputBlock:
    options = [_option(display, name) for name, display in backends]
    initial = next((o for o in options if o.value == chosen), options[0])
    picker = StaticSelectElement(action_id=ids.ACTION_BACKEND, options=options, initial_option=initial)
    return InputBlock(block_id=ids.BLOCK_BACKEND, label="Service", element=picker, dispatch_action=True)


@functools.lru_cache(maxsize=32)
def _blank_view(
    form: FormDeclaration, option: str | None, base_models: tuple[str, ...], retry: bool, dataset_file: bool
) -> str:
    return json.dumps(_view(form, None, option, list(base_models), None, None, retry, dataset_file))


def _view(
    form: FormDeclaration,
    state: FormState | None,
    option: str | None,
    base_models: list[str],
    initial_dataset_option: dict[str, Any] | None,
    errors: dict[str, str] | None,
    retry: bool,
    dataset_file: bool = False,
) -> dict[str, Any]:
    state = dict(state or {})
    if form.option is not None and option is not None:
        state[form.option] = option
    choice = choice_of(form, state, option)
    dataset = _initial_dataset(state, initial_dataset_option)
    shown = visible_fields(form, choice)
    errors = errors or {}
    top = {key: message for key, message in errors.items() if key not in shown}
    blocks: list[Block] = [_error_block(top)] if top else []
    for name in shown:
        blocks += _field_block(form, name, choice, state, base_models, dataset)
        if name in errors:
            blocks.append(_field_error(errors[name]))
    view = View(
        type="modal",
        callback_id=ids.VIEW_FINETUNE,
        title=TITLE_RETRY if retry else TITLE,
        submit=SUBMIT,
        close=CLOSE,
        blocks=blocks,
    )
    built = view.to_dict()
    if dataset_file and DATASET in shown:
        _with_dataset_file(built)
    return built


FILE_LABEL: Final = "Or upload a new dataset"
HINT_LIMIT: Final = 2000  # Block Kit: an input block's hint
FILE_HINT: Final = (
    "One .jsonl file: every line is checked before anything is uploaded, and the report goes to the thread."
)


def dataset_file_block() -> dict[str, Any]:
    """The `file_input` for one .jsonl file (slack_sdk has no model for it), shown under the dataset picker."""
    return {
        "type": "input",
        "block_id": ids.BLOCK_DATASET_FILE,
        "optional": True,
        "label": {"type": "plain_text", "text": FILE_LABEL},
        "element": {"type": "file_input", "action_id": ids.ACTION_DATASET_FILE, "filetypes": ["jsonl"], "max_files": 1},
        "hint": {"type": "plain_text", "text": FILE_HINT},
    }


def _with_dataset_file(view: dict[str, Any]) -> None:
    """A backend that uploads datasets: the picker becomes optional (a file may stand in for it), the file input
    follows it."""
    blocks = view["blocks"]
    at = next(i for i, b in enumerate(blocks) if b.get("block_id") == ids.BLOCK_DATASET)
    blocks[at]["optional"] = True
    blocks.insert(at + 1, dataset_file_block())


def _with_shared_file(view: dict[str, Any], name: str) -> None:
    """The message's own .jsonl is the dataset unless the user picks one or attaches another: the hint says so."""
    for block in view["blocks"]:
        if block.get("block_id") == ids.BLOCK_DATASET_FILE:
            text = f"Leave this and the picker empty to use {name} from the message. {FILE_HINT}"
            block["hint"] = {"type": "plain_text", "text": plain(text, HINT_LIMIT, one_line=True)}


def rebuild_action_ids(form: FormDeclaration) -> tuple[str, ...]:
    """action_ids whose change redraws the modal: the dataset picker, the option field and every switch."""
    rows = [row for row in form.fields if row.kind is Kind.TOGGLE or row.id == form.option]
    return (ids.ACTION_DATASET, *(row.action_id for row in rows))


# --- limits -------------------------------------------------------------------------------------------------


def _iter_options(element: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += list(group.get("options") or [])
    return options


def _plain(obj: object) -> str:
    return str(obj.get("text", "")) if isinstance(obj, Mapping) else str(obj or "")


def check_view_limits(view: Mapping[str, Any]) -> list[str]:
    """Problems Slack would refuse the view for, including those slack_sdk does not check. [] when fine."""
    problems: list[str] = []
    for key in ("title", "submit", "close"):
        if key in view and len(_plain(view[key])) > 24:
            problems.append(f"{key} is over 24 characters")
    if len(view.get("private_metadata") or "") > 3000:
        problems.append("private_metadata is over 3000 characters")
    if len(view.get("callback_id") or "") > 255:
        problems.append("callback_id is over 255 characters")
    if len(json.dumps(view)) >= 250_000:
        problems.append("view is 250 kB or larger")
    blocks = list(view.get("blocks") or [])
    if len(blocks) > 100:
        problems.append(f"{len(blocks)} blocks (max 100)")
    seen: set[str] = set()
    for block in blocks:
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                problems.append(f"duplicate block_id {block_id}")
            seen.add(block_id)
        if block.get("type") == "input" and "submit" not in view:
            problems.append(f"input block {block_id} in a view without submit")
        element = block.get("element") or block.get("accessory")
        if isinstance(element, Mapping):
            problems += [f"{block_id}: {p}" for p in _check_element(element)]
    return problems


def _check_element(element: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    kind = element.get("type")
    options = _iter_options(element)
    values = {o.get("value") for o in options}
    for option in options:
        if len(_plain(option.get("text"))) > OPTION_TEXT_MAX:
            problems.append(f"option text over {OPTION_TEXT_MAX} characters")
        if len(str(option.get("value", ""))) > OPTION_VALUE_MAX:
            problems.append(f"option value over {OPTION_VALUE_MAX} characters")
    if kind in ("checkboxes", "radio_buttons") and len(options) > 10:
        problems.append(f"{kind} with {len(options)} options (max 10)")
    if kind == "static_select":
        if not 1 <= len(options) <= MAX_OPTIONS:
            problems.append(f"static_select with {len(options)} options (needs 1 to {MAX_OPTIONS})")
        initial = element.get("initial_option")
        if isinstance(initial, Mapping) and initial.get("value") not in values:
            problems.append("static_select initial_option is not one of its options")
    if kind == "checkboxes":
        chosen = {o.get("value") for o in element.get("initial_options") or []}
        if not chosen <= values:
            problems.append("checkboxes initial_options are not among its options")
    if kind == "plain_text_input" and len(element.get("initial_value") or "") > 3000:
        problems.append("plain_text_input initial_value over 3000 characters")
    if kind == "number_input":
        problems += _check_number_input(element)
    return problems


def _check_number_input(element: Mapping[str, Any]) -> list[str]:
    try:
        low = float(element.get("min_value", "-inf"))
        high = float(element.get("max_value", "inf"))
        initial = element.get("initial_value")
        value = float(initial) if initial is not None else None
    except (TypeError, ValueError):
        return ["number_input min/max/initial value is not a number"]
    problems = []
    if low > high:
        problems.append("number_input min_value is greater than max_value")
    if value is not None and not low <= value <= high:
        problems.append("number_input initial_value is outside min..max")
    if value is not None and not element.get("is_decimal_allowed") and not value.is_integer():
        problems.append("number_input initial_value is decimal but decimals are not allowed")
    return problems
