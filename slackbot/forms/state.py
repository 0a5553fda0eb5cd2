"""What the user typed, as a plain JSON-able `FormState`, read defensively from `view.state.values`.

`FormState` is the one representation of the form's content: it refills the modal on a rebuild or an
"Edit and retry", and it is stored with each job.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any, Final, Literal

from slackbot.backends.openpipe.fields import Provider
from slackbot.blocks import ids
from slackbot.forms.metadata import KEPT_FIELDS, KeptField, keepable

# --- form state ---------------------------------------------------------------------------------------------

FormValue = str | bool
FormState = dict[str, FormValue]

# Field names (the FormState keys). "dataset_label" keeps the picked option's text so the modal can show the
# choice again without asking the backend.
TEXT_FIELDS: Final = (
    "slug",
    "sft_batch_size",
    "sft_lr_multiplier",
    "sft_epochs",
    "sft_learning_rate",
    "dpo_beta",
    "dpo_lr_multiplier",
    "dpo_epochs",
    "dpo_adapter_weight",
    "dpo_batch_size",
    "pruning_rule_ids",
    "default_temperature",
)
TOGGLE_FIELDS: Final = ("enable_sft", "enable_dpo")

_BLOCKS: Final[dict[str, tuple[str, str]]] = {
    "dataset": (ids.BLOCK_DATASET, ids.ACTION_DATASET),
    "provider": (ids.BLOCK_PROVIDER, ids.ACTION_PROVIDER),
    "slug": (ids.BLOCK_SLUG, ids.ACTION_SLUG),
    "enable_sft": (ids.BLOCK_ENABLE_SFT, ids.ACTION_ENABLE_SFT),
    "sft_batch_size": (ids.BLOCK_SFT_BATCH_SIZE, ids.ACTION_SFT_BATCH_SIZE),
    "sft_lr_multiplier": (ids.BLOCK_SFT_LR_MULTIPLIER, ids.ACTION_SFT_LR_MULTIPLIER),
    "sft_epochs": (ids.BLOCK_SFT_EPOCHS, ids.ACTION_SFT_EPOCHS),
    "sft_learning_rate": (ids.BLOCK_SFT_LEARNING_RATE, ids.ACTION_SFT_LEARNING_RATE),
    "enable_dpo": (ids.BLOCK_ENABLE_DPO, ids.ACTION_ENABLE_DPO),
    "dpo_variant": (ids.BLOCK_DPO_VARIANT, ids.ACTION_DPO_VARIANT),
    "dpo_beta": (ids.BLOCK_DPO_BETA, ids.ACTION_DPO_BETA),
    "dpo_lr_multiplier": (ids.BLOCK_DPO_LR_MULTIPLIER, ids.ACTION_DPO_LR_MULTIPLIER),
    "dpo_epochs": (ids.BLOCK_DPO_EPOCHS, ids.ACTION_DPO_EPOCHS),
    "dpo_adapter_weight": (ids.BLOCK_DPO_ADAPTER_WEIGHT, ids.ACTION_DPO_ADAPTER_WEIGHT),
    "dpo_batch_size": (ids.BLOCK_DPO_BATCH_SIZE, ids.ACTION_DPO_BATCH_SIZE),
    "pruning_rule_ids": (ids.BLOCK_PRUNING_RULES, ids.ACTION_PRUNING_RULES),
    "default_temperature": (ids.BLOCK_TEMPERATURE, ids.ACTION_TEMPERATURE),
}

_MAX_TEXT: Final = 3000  # Slack's plain_text_input limit; anything longer did not come from the modal


def field_block_id(name: str, provider: Provider | None) -> str:
    """The block_id that shows the field `name` (the base model's depends on the provider)."""
    if name == "base_model":
        return ids.block_base_model(provider or Provider.OPENPIPE)
    return _BLOCKS[name][0]


def field_action_id(name: str) -> str:
    return ids.ACTION_BASE_MODEL if name == "base_model" else _BLOCKS[name][1]


def state_provider(state: Mapping[str, object]) -> Provider | None:
    raw = state.get("provider")
    try:
        return Provider(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def state_toggle(state: Mapping[str, object], name: Literal["enable_sft", "enable_dpo"]) -> bool:
    raw = state.get(name)
    return raw if isinstance(raw, bool) else name == "enable_sft"


def visible_fields(provider: Provider | None, *, enable_sft: bool, enable_dpo: bool) -> list[str]:
    """Fields the modal shows for this provider and these toggles, in display order.

    The modal and the parser share this list so an error is only ever reported on a block that exists.
    """
    out = ["dataset", "provider"]
    if provider is not None:
        out += ["base_model"]
    out += ["slug"]
    if provider is not None:
        if provider.supports_sft_switch:
            out.append("enable_sft")
        if enable_sft or not provider.supports_sft_switch:
            out += ["sft_batch_size", "sft_lr_multiplier", "sft_epochs"]
            if provider is Provider.GEMINI:
                out.append("sft_learning_rate")
        if provider.supports_preference:
            out.append("enable_dpo")
            if enable_dpo:
                if provider is Provider.OPENPIPE:
                    out += [
                        "dpo_variant",
                        "dpo_beta",
                        "dpo_lr_multiplier",
                        "dpo_epochs",
                        "dpo_adapter_weight",
                    ]
                else:
                    out += ["dpo_beta", "dpo_lr_multiplier", "dpo_epochs", "dpo_batch_size"]
    out += ["pruning_rule_ids", "default_temperature"]
    return out


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


def form_state_from_view(values: object, blocks: object = None) -> FormState:
    """What the user typed, from `view.state.values`. Never raises: anything unexpected is skipped.

    With the view's `blocks`, an input that has no entry at all in `values` counts as showing its initial value
    (a value put back by "Edit and retry" or a redraw, left untouched): Slack normally reports those, but a
    missing entry must not lose them. An entry that is present, even empty (the user cleared it), wins.
    """
    state: FormState = {}
    if not isinstance(values, Mapping):
        values = {}
    try:
        if isinstance(blocks, list):
            values = _with_initial_values(values, blocks)
        for name in TEXT_FIELDS:
            element = _element(values, *_BLOCKS[name])
            if element is not None and isinstance(element.get("value"), str):
                state[name] = _clean(element["value"])
        dataset = _element(values, ids.BLOCK_DATASET, ids.ACTION_DATASET)
        picked = _option(dataset) if dataset is not None else None
        if picked is not None:
            state["dataset"] = picked[0]
            if picked[1] is not None:
                state["dataset_label"] = picked[1]
        for name in ("provider", "dpo_variant"):
            element = _element(values, *_BLOCKS[name])
            picked = _option(element) if element is not None else None
            if picked is not None:
                state[name] = picked[0]
        for block_id in sorted(k for k in values if isinstance(k, str)):
            if block_id.startswith(ids.BLOCK_BASE_MODEL_PREFIX):
                element = _element(values, block_id, ids.ACTION_BASE_MODEL)
                picked = _option(element) if element is not None else None
                if picked is not None:
                    state["base_model"] = picked[0]
        for name in TOGGLE_FIELDS:
            element = _element(values, *_BLOCKS[name])
            if element is not None and isinstance(element.get("selected_options"), list):
                state[name] = any(
                    isinstance(o, Mapping) and o.get("value") == ids.CHECKED for o in element["selected_options"]
                )
    except Exception:  # a hostile Mapping subclass must not break the handler
        return state
    return state


# --- values of hidden inputs --------------------------------------------------------------------------------
# A rebuild reads only the inputs on screen; the ones it hides would lose their value. `hidden_values` picks
# those values for `ModalMetadata.kept`, `with_kept` puts them back on the next rebuild. Only a rebuild uses
# them: the submission validates `view.state` alone, so a kept (hidden) value is never submitted.


def hidden_values(state: Mapping[str, object], provider: Provider) -> dict[KeptField, FormValue]:
    """The keepable values of `state` whose inputs a modal for `provider` and the state's switches hides."""
    shown = set(
        visible_fields(
            provider, enable_sft=state_toggle(state, "enable_sft"), enable_dpo=state_toggle(state, "enable_dpo")
        )
    )
    kept: dict[KeptField, FormValue] = {}
    for name in KEPT_FIELDS:
        value = state.get(name)
        if name not in shown and keepable(name, value):
            assert isinstance(value, str | bool)
            kept[name] = value
    return kept


def with_kept(state: FormState, kept: Mapping[KeptField, FormValue], *, on_screen: Container[object] = ()) -> FormState:
    """`state` (what is on screen) plus the values kept for inputs that were hidden. The screen always wins: a
    kept value never replaces a value in `state`, nor fills an input that was on screen (block_ids `on_screen`)
    and is blank now."""
    merged: FormState = {}
    for name, value in kept.items():
        if name in KEPT_FIELDS and keepable(name, value) and _BLOCKS[name][0] not in on_screen:
            merged[name] = value
    merged.update(state)
    return merged
