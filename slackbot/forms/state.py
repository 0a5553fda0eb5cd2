"""What the user typed, as a plain JSON-able `FormState`, read defensively from `view.state.values`.

`FormState` is the one representation of the form's content: it refills the modal on a rebuild or an
"Edit and retry", and it is stored with each job.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any, Final

from slackbot import ids
from slackbot.backends.form import (
    BASE_MODEL,
    CORE_FIELDS,
    DATASET,
    DATASET_LABEL,
    FIELD_ID,
    SLUG,
    FormDeclaration,
    choice_of,
    keepable,
    visible_fields,
)

# --- form state ---------------------------------------------------------------------------------------------

FormValue = str | bool
FormState = dict[str, FormValue]

_MAX_TEXT: Final = 3000  # Slack's plain_text_input limit; anything longer did not come from the modal
_MAX_FIELDS: Final = 100  # a view has at most 100 blocks


def field_block_id(form: FormDeclaration, name: str, option: str | None) -> str:
    """The block_id that shows the field `name` (the base model's depends on the option)."""
    if name == BASE_MODEL:
        return ids.block_base_model(option or form.backend)
    return name


def field_action_id(form: FormDeclaration, name: str) -> str:
    if name == BASE_MODEL:
        return ids.ACTION_BASE_MODEL
    if name == DATASET:
        return ids.ACTION_DATASET
    if name == SLUG:
        return ids.ACTION_SLUG
    row = form.get(name)
    assert row is not None, f"{name} is not a field of {form.backend}'s form"
    return row.action_id


def _clean(text: str) -> str:
    # NUL cannot be stored in a PostgreSQL JSON column; the cap keeps stored state bounded.
    return text.replace("\x00", "")[:_MAX_TEXT]


# The part of an element's state its initial_* field stands for, by element type.
_INITIAL_FIELDS = {
    "plain_text_input": ("initial_value", "value"),
    "number_input": ("initial_value", "value"),
    "static_select": ("initial_option", "selected_option"),
    "external_select": ("initial_option", "selected_option"),
    "radio_buttons": ("initial_option", "selected_option"),
    "checkboxes": ("initial_options", "selected_options"),
}


def _with_initial_values(values: Mapping[Any, Any], blocks: list[Any]) -> Mapping[Any, Any]:
    """`values`, plus the initial value of each input block that `values` says nothing about."""
    merged: dict[Any, Any] | None = None
    for block in blocks:
        if not isinstance(block, Mapping) or block.get("type") != "input":
            continue
        block_id, element = block.get("block_id"), block.get("element")
        if not isinstance(block_id, str) or not isinstance(element, Mapping):
            continue
        action_id, fields = element.get("action_id"), _INITIAL_FIELDS.get(str(element.get("type")))
        present = values.get(block_id)
        if fields is None or not isinstance(action_id, str) or fields[0] not in element:
            continue
        if isinstance(present, Mapping) and action_id in present:
            continue
        merged = dict(values) if merged is None else merged
        merged[block_id] = {action_id: {"type": element["type"], fields[1]: element[fields[0]]}}
    return values if merged is None else merged


def _element(values: Mapping[Any, Any], block_id: str, action_id: str) -> Mapping[Any, Any] | None:
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return None
    element = block.get(action_id)
    return element if isinstance(element, Mapping) else None


def _option(element: Mapping[Any, Any]) -> tuple[str, str | None] | None:
    option = element.get("selected_option")
    if not isinstance(option, Mapping) or not isinstance(option.get("value"), str):
        return None
    text = option.get("text")
    label = text.get("text") if isinstance(text, Mapping) else None
    return _clean(option["value"]), _clean(label) if isinstance(label, str) else None


# What each element type holds, and the action_id suffix a field of that kind has (see backends.form.action_id).
_READ: Final = {
    "plain_text_input": "_input",
    "number_input": "_input",
    "static_select": "_select",
    "checkboxes": "_toggle",
}


def _read(element: Mapping[Any, Any]) -> FormValue | None:
    kind = element.get("type")
    if kind in ("plain_text_input", "number_input"):
        value = element.get("value")
        return _clean(value) if isinstance(value, str) else None
    if kind == "static_select":
        picked = _option(element)
        return picked[0] if picked is not None else None
    if kind == "checkboxes" and isinstance(element.get("selected_options"), list):
        return any(isinstance(o, Mapping) and o.get("value") == ids.CHECKED for o in element["selected_options"])
    return None


def form_state_from_view(values: object, blocks: object = None) -> FormState:
    """What the user typed, from `view.state.values`. Never raises: anything unexpected is skipped.

    Needs no form: every field's block_id is its id and its action_id says its kind, so any block of that shape
    is read (the parser then takes only its form's fields). With the view's `blocks`, an input that has no entry
    at all in `values` counts as showing its initial value (a value put back by "Edit and retry" or a redraw,
    left untouched): Slack normally reports those, but a missing entry must not lose them. An entry that is
    present, even empty (the user cleared it), wins.
    """
    state: FormState = {}
    if not isinstance(values, Mapping):
        values = {}
    try:
        if isinstance(blocks, list):
            values = _with_initial_values(values, blocks)
        dataset = _element(values, ids.BLOCK_DATASET, ids.ACTION_DATASET)
        picked = _option(dataset) if dataset is not None else None
        if picked is not None:
            state[DATASET] = picked[0]
            if picked[1] is not None:
                state[DATASET_LABEL] = picked[1]
        slug = _element(values, ids.BLOCK_SLUG, ids.ACTION_SLUG)
        if slug is not None and isinstance(slug.get("value"), str):
            state[SLUG] = _clean(slug["value"])
        block_ids = sorted(k for k in values if isinstance(k, str))
        for block_id in block_ids:
            if block_id.startswith(ids.BLOCK_BASE_MODEL_PREFIX):
                element = _element(values, block_id, ids.ACTION_BASE_MODEL)
                picked = _option(element) if element is not None else None
                if picked is not None:
                    state[BASE_MODEL] = picked[0]
        read = 0
        for block_id in block_ids:
            if block_id in CORE_FIELDS or not FIELD_ID.fullmatch(block_id) or read >= _MAX_FIELDS:
                continue
            block = values.get(block_id)
            if not isinstance(block, Mapping):
                continue
            for action_id, element in block.items():
                suffix = _READ.get(str(element.get("type"))) if isinstance(element, Mapping) else None
                if suffix is None or action_id != block_id + suffix:
                    continue
                value = _read(element)
                if value is not None:
                    state[block_id] = value
                    read += 1
    except Exception:  # a hostile Mapping subclass must not break the handler
        return state
    return state


# --- values of hidden inputs --------------------------------------------------------------------------------
# A rebuild reads only the inputs on screen; the ones it hides would lose their value. `hidden_values` picks
# those values for `ModalMetadata.kept`, `with_kept` puts them back on the next rebuild. Only a rebuild uses
# them: the submission validates `view.state` alone, so a kept (hidden) value is never submitted.


def hidden_values(form: FormDeclaration, state: Mapping[str, object], option: str | None) -> dict[str, FormValue]:
    """The keepable values of `state` whose inputs a modal for `option` and the state's switches hides."""
    shown = set(visible_fields(form, choice_of(form, state, option)))
    kept: dict[str, FormValue] = {}
    for row in form.fields:
        value = state.get(row.id)
        if row.id not in shown and keepable(form, row.id, value):
            assert isinstance(value, str | bool)
            kept[row.id] = value
    return kept


def with_kept(
    form: FormDeclaration, state: FormState, kept: Mapping[str, FormValue], *, on_screen: Container[object] = ()
) -> FormState:
    """`state` (what is on screen) plus the values kept for inputs that were hidden. The screen always wins: a
    kept value never replaces a value in `state`, nor fills an input that was on screen (block_ids `on_screen`)
    and is blank now."""
    merged: FormState = {}
    for name, value in kept.items():
        if keepable(form, name, value) and name not in on_screen:
            merged[name] = value
    merged.update(state)
    return merged
