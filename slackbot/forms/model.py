"""Validation of a `FormState` against a backend's form declaration into the neutral `FineTuneSpec`, or
`FormErrors` keyed by block_id (for `response_action: errors`)."""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic_core import PydanticCustomError

from slackbot import ids
from slackbot.backends.base import Dataset, FineTuneSpec, Method, ParamValue
from slackbot.backends.checks import AnyOf, check_slug, form_error, is_blank, suggest_slug
from slackbot.backends.form import (
    BASE_MODEL,
    DATASET,
    SLUG,
    Choice,
    FormDeclaration,
    FormField,
    Kind,
    choice_of,
    state_toggle,
    visible_fields,
)
from slackbot.forms.state import field_block_id
from slackbot.text import plain

FIELD_ERROR_LIMIT = 500


class FormErrors(dict[str, str]):
    """block_id → one message saying what is wrong and what is allowed."""


@dataclass(frozen=True)
class FormContext:
    known_datasets: Mapping[str, Dataset]
    base_models: Sequence[str]  # for the chosen option, with the project's own models where it takes them
    existing_slugs: Container[str] | None = None  # None: unknown, the service refuses a duplicate itself
    base_model_names: Collection[str] | None = None  # names no slug may take; None: the form's reserved names
    limits: object | None = None  # the service's limits for the chosen base model, when cached (`form.refine`)
    form: FormDeclaration = field(kw_only=True)

    @property
    def reserved(self) -> Collection[str]:
        return self.form.reserved_names if self.base_model_names is None else self.base_model_names


def _select(row: FormField, raw: object) -> str | None:
    values = [value for value, _ in row.options]
    if isinstance(raw, str) and raw in values:
        return raw
    if is_blank(raw) and not row.required:
        return None
    if row.required:
        raise form_error(f"Choose a {row.label.lower()}: " + ", ".join(label for _, label in row.options) + ".")
    raise form_error(f"{row.label} must be one of " + ", ".join(values) + " (or blank for the default).")


def _value(row: FormField, raw: object, choice: Choice) -> ParamValue | None:
    if row.check is not None:
        return row.check(raw, choice)
    if row.kind is Kind.SELECT:
        return _select(row, raw)
    if is_blank(raw):
        if row.required:
            raise form_error(f"Enter the {row.label.lower()}.")
        return None
    if not isinstance(raw, str):
        raise form_error(f"{row.label} must be text.")
    return raw.strip()


def _methods_words(form: FormDeclaration) -> str:
    names = [form.method_labels.get(m, m.value) for m in form.methods if form.toggle_of(m) is not None]
    if len(names) == 2:
        return f"{names[0]}, {names[1]} or both"
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


class _Parser:
    def __init__(self, form: FormDeclaration, state: Mapping[str, object], ctx: FormContext) -> None:
        self.form, self.state, self.ctx = form, state, ctx
        self.choice = choice_of(form, state)
        self.shown = visible_fields(form, self.choice)
        self.errors = FormErrors()
        self.values: dict[str, ParamValue | None] = {}

    def fail(self, name: str, exc: PydanticCustomError | str) -> None:
        # An error on a field the modal does not show (a switch the option lacks) goes on the option's block.
        # Shown as plain text under the field; a message may quote what was typed (a pasted token, too).
        message = plain(exc if isinstance(exc, str) else exc.message(), FIELD_ERROR_LIMIT)
        target = name if name in self.shown else (self.form.option or DATASET)
        self.errors.setdefault(field_block_id(self.form, target, self.choice.option), message)

    def run(self) -> FineTuneSpec | FormErrors:
        form, choice = self.form, self.choice
        option_row = form.get(form.option) if form.option else None
        if option_row is not None:
            self.field(option_row)
        self.switches()
        dataset = self.dataset()
        base_model = self.base_model()
        slug = self.slug(dataset)
        for row in form.fields:
            if row is not option_row and row.kind is not Kind.TOGGLE and row.id in self.shown:
                self.field(row)
        if self.errors:
            return self.errors
        assert dataset is not None and base_model is not None and slug is not None
        parameters = {
            name: value
            for name, value in self.values.items()
            if name != form.option and value is not None and value != ()
        }
        spec = FineTuneSpec(
            backend=form.backend,
            dataset_id=dataset,
            slug=slug,
            base_model=base_model,
            option=choice.option,
            methods=tuple(m for m in form.methods if m in choice.methods),
            parameters=parameters,
        )
        for name, message in (form.refine(spec, self.ctx.limits) if form.refine else {}).items():
            self.fail(name, message)
        return self.errors or spec

    def field(self, row: FormField) -> None:
        try:
            self.values[row.id] = _value(row, self.state.get(row.id), self.choice)
        except PydanticCustomError as exc:
            self.fail(row.id, exc)

    def switches(self) -> None:
        """Every method switch is checked, shown or not, so a stored state asking for a method the option does
        not offer is refused by name."""
        form, option = self.form, self.choice.option
        if form.option is not None and option is None:
            return
        failed = False
        toggles = [t for t in (form.toggle_of(m) for m in form.methods) if t is not None]
        for toggle in toggles:
            on = state_toggle(form, self.state, toggle.id)
            if toggle.shown_for(option) or on == toggle.default:
                continue
            failed = True
            method = form.method_labels.get(toggle.method or Method.SFT, "")
            label = form.label_of(option)
            if toggle.default:
                self.fail(toggle.id, f"{label} always trains with {method}: it cannot be switched off.")
            else:
                offering = [name for value, name in _option_labels(form) if toggle.shown_for(value)]
                only = ", ".join(offering[:-1]) + f" and {offering[-1]}" if len(offering) > 1 else "".join(offering)
                self.fail(toggle.id, f"{toggle.label} is not available for {label}: only {only} offer it.")
        if toggles and not failed and not self.choice.methods:
            self.fail(toggles[-1].id, f"Turn on {_methods_words(form)}: a fine-tune needs at least one of them.")

    def dataset(self) -> str | None:
        raw = self.state.get(DATASET)
        if raw == ids.OPTION_ERROR_VALUE:
            message = "The dataset list could not be loaded: open the menu again to retry, then pick one."
        elif not isinstance(raw, str) or not raw:
            message = "Choose the dataset to train on."
        elif raw not in self.ctx.known_datasets:
            message = "That dataset no longer exists in the project (deleted?): choose another one."
        else:
            return raw
        self.fail(DATASET, message)
        return None

    def base_model(self) -> str | None:
        if BASE_MODEL not in self.shown:
            return None
        label = self.form.label_of(self.choice.option)
        raw = self.state.get(BASE_MODEL)
        if not isinstance(raw, str) or not raw:
            self.fail(BASE_MODEL, f"Choose a base model for {label}.")
            return None
        if raw not in self.ctx.base_models:
            extra = (
                " or one of the project's deployed models" if self.form.offers_own_models(self.choice.option) else ""
            )
            self.fail(BASE_MODEL, f'"{raw[:80]}" is not a base model for {label}: pick one from the list{extra}.')
            return None
        return raw

    def slug(self, dataset_id: str | None) -> str | None:
        ctx = self.ctx
        # The project's own deployed models are offered as base models: their slugs are taken too.
        taken = AnyOf((ctx.existing_slugs or (), ctx.base_models))
        raw = self.state.get(SLUG)
        dataset = ctx.known_datasets.get(dataset_id) if dataset_id is not None else None
        if is_blank(raw) and dataset is not None:
            # Left blank: the suggestion the modal shows as placeholder (see blocks/modal.py).
            return suggest_slug(dataset.name, taken, ctx.reserved)
        try:
            return check_slug(raw, ctx.reserved, taken)
        except PydanticCustomError as exc:
            self.fail(SLUG, exc)
            return None


def _option_labels(form: FormDeclaration) -> tuple[tuple[str, str], ...]:
    row = form.get(form.option) if form.option else None
    return row.options if row is not None else ()


def parse_form(state: Mapping[str, object], ctx: FormContext) -> FineTuneSpec | FormErrors:
    """Validate what the user typed against `ctx.form`. Fields the modal does not show for this choice are
    ignored."""
    return _Parser(ctx.form, state, ctx).run()
