"""A backend's form, declared as one table of fields; everything the form does is derived from that table.

Each backend declares a `FormDeclaration` (OpenPipe's is `backends/openpipe/fields.py`). From its rows come the
modal's inputs, the reading of `view.state.values`, which values are kept across redraws, validation and its
messages, the card's "Settings" line and where the service's refusals are shown. Adding a field is one row.

The dataset, base model and slug are every backend's, so they are not rows: the engine places them (the base
model after the `head` rows, which is where a backend's option field goes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from slackbot.backends.base import FineTuneSpec, Method, ParamValue

# Form state keys that are not rows of a declaration.
DATASET: Final = "dataset"
DATASET_LABEL: Final = "dataset_label"  # the picked dataset option's text, to show the choice again
BASE_MODEL: Final = "base_model"
SLUG: Final = "slug"
CORE_FIELDS: Final = frozenset({DATASET, DATASET_LABEL, BASE_MODEL, SLUG})
# A field id is its block_id and the stem of its action_id (see `action_id`): short, lowercase, stable.
FIELD_ID: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")


class Kind(StrEnum):
    TEXT = "text"  # one-line plain_text_input
    LONG_TEXT = "long_text"  # multiline plain_text_input
    NUMBER = "number"  # number_input (decimals allowed) between `low` and `high`
    SELECT = "select"  # static_select of `options`
    TOGGLE = "toggle"  # one checkbox; a method's switch when `method` is set


@dataclass(frozen=True)
class Choice:
    """What decides which fields show: the backend's option value and the training methods switched on."""

    option: str | None
    methods: frozenset[Method]


def _always(option: str | None) -> bool:
    return True


# A row's check: the raw value (a str from the modal, a bool for a toggle, or a JSON number from a stored state)
# → the value the spec keeps (None: blank, "the service's default"); raises `form_error(message)` otherwise.
Check = Callable[[object, Choice], ParamValue | None]
Placeholder = str | Callable[[Choice], str]


@dataclass(frozen=True, eq=False)
class FormField:
    """One row of a backend's form. Only `id` and `label` are required; the rest says how the row behaves."""

    id: str
    label: str
    kind: Kind = Kind.TEXT
    check: Check | None = None  # None: blank → None, anything else kept as typed (text) or as chosen (select)
    shown_for: Callable[[str | None], bool] = _always  # which option values show it
    needs: Method | None = None  # shown only while this method is on
    placeholder: Placeholder = ""
    hint: str | None = None
    options: tuple[tuple[str, str], ...] = ()  # a select's (value, label)
    toggle_text: str = ""  # a toggle's checkbox text
    default: bool = False  # a toggle's value when the form says nothing
    method: Method | None = None  # a toggle that switches this method on
    head: bool = False  # shown before the base model (a backend's option field)
    divider: bool = False  # a divider above it
    required: bool = False
    keep: bool = False  # its value is kept in the modal's metadata while a redraw hides it
    low: str | None = None  # a number input's bounds, as Slack takes them
    high: str | None = None
    wire: tuple[str, ...] = ()  # regexes of the service's words for it (wire paths, names) in a refusal
    wire_rank: int = 1  # lower is tried first: precise wire paths before bare words
    card: str | None = None  # its name on the card's "Settings" line, under its method
    card_method: Method | None = None
    card_order: int = 0
    card_title: bool = False  # its value, when given, names its method's part of the card (e.g. "APO Zero")

    @property
    def block_id(self) -> str:
        return self.id

    @property
    def action_id(self) -> str:
        return action_id(self.id, self.kind)

    def shown(self, choice: Choice) -> bool:
        return self.shown_for(choice.option) and (self.needs is None or self.needs in choice.methods)

    def placeholder_for(self, choice: Choice) -> str:
        return self.placeholder(choice) if callable(self.placeholder) else self.placeholder


_SUFFIX: Final = {
    Kind.TEXT: "_input",
    Kind.LONG_TEXT: "_input",
    Kind.NUMBER: "_input",
    Kind.SELECT: "_select",
    Kind.TOGGLE: "_toggle",
}


def action_id(field_id: str, kind: Kind) -> str:
    return field_id + _SUFFIX[kind]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one constant per backend
class FormDeclaration:
    """A backend's whole form: its rows in display order, and the few words the engine needs about it."""

    backend: str
    service: str  # how users know the service ("OpenPipe"), for refusals
    fields: tuple[FormField, ...]
    option: str | None = None  # the row whose value picks the base-model list and what else shows
    option_label: Callable[[str | None], str] | None = None  # an option value's name in messages
    methods: tuple[Method, ...] = (Method.SFT,)  # the methods it trains with, in the card's order
    method_labels: Mapping[Method, str] = field(default_factory=lambda: {Method.SFT: "SFT", Method.DPO: "DPO"})
    reserved_names: Collection[str] = ()  # names no slug may take (its base models)
    offers_own_models: Callable[[str | None], bool] = lambda option: False
    core_wire: tuple[tuple[str, str, int], ...] = ()  # (regex, dataset / base_model / slug, rank) for refusals
    blank_text: str = "default"  # what a blank field means, on the card
    # Checks across fields or against the service's limits for the chosen base model (`FormContext.limits`):
    # field id → message. None: the rows' own checks are all.
    refine: Callable[[FineTuneSpec, object | None], Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        ids = [f.id for f in self.fields]
        assert len(ids) == len(set(ids)), "a field id is declared twice"
        for f in self.fields:
            assert FIELD_ID.fullmatch(f.id) and f.id not in CORE_FIELDS, f"bad field id {f.id!r}"
            assert f.kind is not Kind.SELECT or f.options, f"select {f.id} has no options"
        assert self.option is None or self.option in ids, "the option field is not declared"
        assert len([f for f in self.fields if f.keep]) <= MAX_KEPT, "more kept fields than the metadata holds"

    def get(self, field_id: str) -> FormField | None:
        return _index(self).get(field_id)

    def label_of(self, option: str | None) -> str:
        return self.option_label(option) if self.option_label is not None else self.service

    def toggle_of(self, method: Method) -> FormField | None:
        return next((f for f in self.fields if f.kind is Kind.TOGGLE and f.method is method), None)


_INDEXES: dict[int, dict[str, FormField]] = {}


def _index(form: FormDeclaration) -> dict[str, FormField]:
    # Declarations are module-level constants: indexed once each.
    found = _INDEXES.get(id(form))
    if found is None:
        found = _INDEXES[id(form)] = {f.id: f for f in form.fields}
    return found


# --- what a state shows ---------------------------------------------------------------------------------------


def state_option(form: FormDeclaration, state: Mapping[str, object]) -> str | None:
    """The option value in `state`, if it is one of the option field's values."""
    if form.option is None:
        return None
    raw = state.get(form.option)
    option_field = form.get(form.option)
    assert option_field is not None
    return raw if isinstance(raw, str) and raw in {value for value, _ in option_field.options} else None


def default_option(form: FormDeclaration) -> str | None:
    """The option a new form starts with: the option field's first."""
    row = form.get(form.option) if form.option else None
    return row.options[0][0] if row is not None else None


def state_toggle(form: FormDeclaration, state: Mapping[str, object], field_id: str) -> bool:
    raw = state.get(field_id)
    toggle = form.get(field_id)
    return raw if isinstance(raw, bool) else bool(toggle and toggle.default)


def methods_on(form: FormDeclaration, option: str | None, state: Mapping[str, object]) -> frozenset[Method]:
    """The methods on: a method without a switch, or whose switch this option does not show, is at its default."""
    on: set[Method] = set()
    for method in form.methods:
        toggle = form.toggle_of(method)
        if toggle is None:
            on.add(method)
        elif toggle.shown_for(option):
            if state_toggle(form, state, toggle.id):
                on.add(method)
        elif toggle.default:
            on.add(method)
    return frozenset(on)


def choice_of(form: FormDeclaration, state: Mapping[str, object], option: str | None = None) -> Choice:
    """The choice a state makes; `option` (the listener's reading of a new choice) wins over the state's."""
    option = option if option is not None else state_option(form, state)
    return Choice(option=option, methods=methods_on(form, option, state))


def visible_fields(form: FormDeclaration, choice: Choice) -> list[str]:
    """Field ids the modal shows for this choice, in display order (the core ones included).

    The modal and the parser share this list so an error is only ever reported on a block that exists.
    """
    shown = [f.id for f in form.fields if f.shown(choice)]
    head = [f.id for f in form.fields if f.head and f.id in shown]
    out = [DATASET, *head]
    if form.option is None or choice.option is not None:
        out.append(BASE_MODEL)
    out.append(SLUG)
    out += [name for name in shown if name not in head]
    return out


# --- values kept across redraws -------------------------------------------------------------------------------
# Any sensible value of a kept field is a short ASCII word: a number, "auto", a variant. A longer value, or one
# with other characters (non-ASCII such as Unicode digits, tabs, ...), is NOT kept: it is dropped (lost) when
# its input is hidden. The bound keeps the encoded metadata far below Slack's 3000 characters whatever was typed
# (see forms/metadata.py and tests/forms/test_kept.py).
KEPT_TEXT_MAX: Final = 64
MAX_KEPT: Final = 14  # values kept at once; 14 ids of 32 characters with the worst text each fit in the metadata
_KEPT_TEXT: Final = re.compile(rf"[\x20-\x7e]{{1,{KEPT_TEXT_MAX}}}")


def keepable_value(value: object) -> bool:
    """Whether `value` could be kept for some field: a switch's bool, or a short printable ASCII text."""
    return isinstance(value, bool) or (isinstance(value, str) and _KEPT_TEXT.fullmatch(value) is not None)


def keepable(form: FormDeclaration, name: str, value: object) -> bool:
    """Whether `value` of the field `name` may be kept in the metadata while its input is hidden."""
    row = form.get(name)
    if row is None or not row.keep:
        return False
    if row.kind is Kind.TOGGLE:
        return isinstance(value, bool)
    return isinstance(value, str) and _KEPT_TEXT.fullmatch(value) is not None


def kept_fields(form: FormDeclaration) -> tuple[str, ...]:
    return tuple(f.id for f in form.fields if f.keep)


# --- the card -------------------------------------------------------------------------------------------------


def settings_line(
    form: FormDeclaration, option: str | None, methods: Collection[Method], parameters: Mapping[str, ParamValue]
) -> str:
    """The card's "Settings": per method, its fields' values ("provider default" when blank), or "off"."""
    known = form.option is None or option in {value for value, _ in _option_row(form).options}
    # An option this version does not know (a job stored by a newer one): shown as the form's first option.
    choice = Choice(option=option if known else default_option(form), methods=frozenset(methods))
    parts: list[str] = []
    for method in form.methods:
        name = form.method_labels.get(method, method.value)
        toggle = form.toggle_of(method)
        if method not in choice.methods:
            if toggle is not None and toggle.shown_for(choice.option):
                parts.append(f"{name}: off")
            continue
        rows = [f for f in form.fields if f.card_method is method and f.shown(choice)]
        title = next((str(parameters[f.id]) for f in rows if f.card_title and f.id in parameters), name)
        shown = sorted((f for f in rows if f.card), key=lambda f: f.card_order)
        values = ", ".join(f"{f.card} {_shown_value(parameters.get(f.id), form)}" for f in shown)
        parts.append(f"{title}: {values}")
    # Fields every method trains with (e.g. epochs on a service whose SFT and DPO share them) get a line of their own.
    common = sorted(
        (f for f in form.fields if f.card and f.card_method is None and f.shown(choice)), key=lambda f: f.card_order
    )
    if common:
        parts.append("Training: " + ", ".join(f"{f.card} {_shown_value(parameters.get(f.id), form)}" for f in common))
    return "\n".join(parts)


def _shown_value(value: ParamValue | None, form: FormDeclaration) -> str:
    return form.blank_text if value is None else str(value)


def _option_row(form: FormDeclaration) -> FormField:
    row = form.get(form.option) if form.option else None
    assert row is not None
    return row
