"""Together's form: one row per field (`TOGETHER_FORM`), the create request built from a spec, and the bounds
that depend on the chosen base model (`check_limits`).

The option field is the training type (LoRA or full): it decides which rows show (LoRA's rank, alpha, dropout
and modules). SFT and DPO are the two method switches; Together trains with one of them per job. Blank always
means "Together's default" (the API's defaults are given in the placeholders). The rows check what a value is
(a number, a whole number, "max"); how large it may be depends on the base model, so those bounds are checked
by `check_limits` against `GET /fine-tunes/models/limits` for that model (cached by the catalog), or against
the widest bounds Together documents while that model's limits are not known yet.
"""

from __future__ import annotations

import re
from typing import Final

from slackbot.backends.base import FineTuneSpec, Method, ParamValue
from slackbot.backends.checks import (
    check_number,
    form_error,
    is_blank,
    number_check,
    pattern_check,
    split_list,
    whole_check,
)
from slackbot.backends.form import SLUG, Choice, FormDeclaration, FormField, Kind
from slackbot.backends.together.wire import (
    CosineSchedulerArgs,
    CreateFineTuneRequest,
    FullTrainingLimits,
    FullTrainingType,
    LinearSchedulerArgs,
    LoraTrainingLimits,
    LoraTrainingType,
    LRScheduler,
    ModelLimits,
    TrainingMethodDPO,
    TrainingMethodSFT,
)

LORA: Final = "lora"
FULL: Final = "full"
MAX_SUFFIX: Final = 40  # Together's SDK: "up to 40 character suffix" in the output model's name
# Together's defaults (the spec's `default`s; the LoRA rank and alpha are what its SDK sends when none is given).
DEFAULT_LORA_RANK: Final = 8
DEFAULT_EPOCHS: Final = 1
DEFAULT_LEARNING_RATE: Final = 1e-5

# The widest bounds Together's limits endpoint documents for any model: used while the chosen model's own limits
# are not cached yet (the service then refuses anything its model does not take, and the refusal is shown under
# the field). A message checked against these says so.
WIDEST_LIMITS: Final = ModelLimits(
    model_name="",
    max_num_epochs=20,
    max_num_evals=100,
    max_num_checkpoints=20,
    max_learning_rate=1.0,
    min_learning_rate=1e-8,
    full_training=FullTrainingLimits(max_batch_size=1024, max_batch_size_dpo=1024, min_batch_size=1),
    lora_training=LoraTrainingLimits(max_batch_size=1024, max_batch_size_dpo=1024, min_batch_size=1, max_rank=256),
    supports_full_training=True,
)

_MODULE = re.compile(r"[a-z][a-z0-9_]{0,40}")
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_WANDB = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_DEFAULT = "(blank = Together's default)"


def _lora(option: str | None) -> bool:
    return option in (None, LORA)


def _any(option: str | None) -> bool:
    return True


def _label(option: str | None) -> str:
    return "Together (full training)" if option == FULL else "Together (LoRA)"


def _batch(raw: object, choice: Choice) -> int | str | None:
    if is_blank(raw):
        return None
    if isinstance(raw, str) and raw.strip().lower() == "max":
        return "max"
    value = check_number(raw, 'Batch size must be "max" or a whole number from 1 to 1024', low=1, high=1024, whole=True)
    return None if value is None else int(value)


def _modules(raw: object, choice: Choice) -> str | None:
    if is_blank(raw):
        return None
    if not isinstance(raw, str):
        raise form_error("LoRA trainable modules must be text.")
    text = raw.strip()
    if text == "all-linear":
        return text
    parts = split_list(text)
    bad = next((p for p in parts if not _MODULE.fullmatch(p)), None)
    if bad is not None or not parts:
        shown = (bad or text)[:40]
        raise form_error(
            f'"{shown}" is not a module name: use "all-linear" or module names such as q_proj, v_proj separated '
            "by commas."
        )
    return ",".join(parts)


_YES_NO: Final = (("true", "yes"), ("false", "no"))

TOGETHER_FORM: Final = FormDeclaration(
    backend="together",
    service="Together",
    option="training_type",
    option_label=_label,
    methods=(Method.SFT, Method.DPO),
    blank_text="default",
    refine=lambda spec, limits: check_limits(spec, limits),
    core_wire=(
        (r"^model\b|\bbase model\b", "base_model", 20),
        (r"^training_file\b", "dataset", 22),
        (r"^suffix\b", "slug", 23),
    ),
    fields=(
        FormField(
            "training_type",
            "Training type",
            Kind.SELECT,
            head=True,
            required=True,
            options=((LORA, "LoRA (adapter)"), (FULL, "Full (all weights)")),
            hint="Full training is not offered for every base model (Together's limits for the model say).",
            wire=(r"^training_type\b(?!\.lora)",),
            wire_rank=9,
        ),
        FormField(
            "enable_sft",
            "Supervised fine-tuning (SFT)",
            Kind.TOGGLE,
            toggle_text="Train with SFT",
            default=True,
            method=Method.SFT,
            divider=True,
            keep=True,
        ),
        FormField(
            "train_on_inputs",
            "Train on inputs",
            Kind.SELECT,
            needs=Method.SFT,
            options=(("auto", "auto"), *_YES_NO),
            hint="Whether the loss counts the user's messages too (blank = auto).",
            keep=True,
            wire=(r"train_on_inputs",),
            wire_rank=5,
            card="train on inputs",
            card_method=Method.SFT,
        ),
        FormField(
            "enable_dpo",
            "Preference tuning (DPO)",
            Kind.TOGGLE,
            toggle_text="Train with DPO instead (needs preference pairs; switch SFT off)",
            method=Method.DPO,
            divider=True,
            keep=True,
        ),
        FormField(
            "dpo_beta",
            "DPO beta",
            check=number_check("DPO beta", 0, 10, "0.1", low_open=True),
            needs=Method.DPO,
            placeholder="e.g. 0.1 (blank = 0.1)",
            keep=True,
            wire=(r"dpo_beta",),
            wire_rank=3,
            card="beta",
            card_method=Method.DPO,
            card_order=1,
        ),
        FormField(
            "rpo_alpha",
            "RPO alpha",
            check=number_check("RPO alpha", 0, 10, "0.5"),
            needs=Method.DPO,
            placeholder="weight of the SFT loss added to DPO (blank = 0)",
            keep=True,
            wire=(r"rpo_alpha",),
            wire_rank=3,
            card="RPO alpha",
            card_method=Method.DPO,
            card_order=2,
        ),
        FormField(
            "simpo_gamma",
            "SimPO gamma",
            check=number_check("SimPO gamma", 0, 10, "0.5"),
            needs=Method.DPO,
            placeholder="target reward margin (blank = 0)",
            keep=True,
            wire=(r"simpo_gamma",),
            wire_rank=3,
            card="SimPO gamma",
            card_method=Method.DPO,
            card_order=3,
        ),
        FormField(
            "dpo_normalize",
            "Normalise log-ratios by length",
            Kind.SELECT,
            needs=Method.DPO,
            options=_YES_NO,
            keep=True,
            wire=(r"dpo_normalize_logratios_by_length",),
            wire_rank=3,
        ),
        FormField(
            "dpo_reference_free",
            "Reference-free DPO",
            Kind.SELECT,
            needs=Method.DPO,
            options=_YES_NO,
            keep=True,
            wire=(r"dpo_reference_free",),
            wire_rank=3,
        ),
        FormField(
            "lora_r",
            "LoRA rank",
            check=whole_check("LoRA rank", 1, 1024),
            shown_for=_lora,
            placeholder=f"e.g. 16 (blank = the model's default, else {DEFAULT_LORA_RANK})",
            divider=True,
            keep=True,
            wire=(r"lora_r\b",),
            wire_rank=4,
            card="LoRA rank",
            card_order=5,
        ),
        FormField(
            "lora_alpha",
            "LoRA alpha",
            check=whole_check("LoRA alpha", 1, 4096),
            shown_for=_lora,
            placeholder="blank = twice the rank",
            keep=True,
            wire=(r"lora_alpha",),
            wire_rank=4,
        ),
        FormField(
            "lora_dropout",
            "LoRA dropout",
            check=number_check("LoRA dropout", 0, 1, "0.05"),
            shown_for=_lora,
            placeholder="0 to 1 (blank = 0)",
            keep=True,
            wire=(r"lora_dropout",),
            wire_rank=4,
        ),
        FormField(
            "lora_modules",
            "LoRA trainable modules",
            check=_modules,
            shown_for=_lora,
            placeholder='"all-linear" or e.g. q_proj, v_proj (blank = all-linear)',
            keep=True,
            wire=(r"lora_trainable_modules",),
            wire_rank=4,
        ),
        FormField(
            "n_epochs",
            "Epochs",
            check=whole_check("Epochs", 1, 1000),
            placeholder=f"e.g. 3 (blank = {DEFAULT_EPOCHS})",
            divider=True,
            wire=(r"^n_epochs\b",),
            wire_rank=10,
            card="epochs",
            card_order=0,
        ),
        FormField(
            "learning_rate",
            "Learning rate (absolute, not a multiplier)",
            check=number_check("The learning rate", 0, 1, "0.00001", low_open=True),
            placeholder="e.g. 0.00001 (blank = 0.00001)",
            wire=(r"^learning_rate\b",),
            wire_rank=10,
            card="learning rate",
            card_order=1,
        ),
        FormField(
            "batch_size",
            "Batch size",
            check=_batch,
            placeholder='"max" or a whole number (blank = max)',
            wire=(r"^batch_size\b",),
            wire_rank=10,
            card="batch size",
            card_order=2,
        ),
        FormField(
            "n_checkpoints",
            "Checkpoints",
            check=whole_check("Checkpoints", 1, 1000),
            placeholder="blank = 1",
            wire=(r"^n_checkpoints\b",),
            wire_rank=10,
        ),
        FormField(
            "n_evals",
            "Evaluations",
            check=whole_check("Evaluations", 0, 1000),
            placeholder="with a validation file (blank = 0)",
            wire=(r"^n_evals\b",),
            wire_rank=10,
        ),
        FormField(
            "warmup_ratio",
            "Warm-up ratio",
            check=number_check("The warm-up ratio", 0, 1, "0.05"),
            placeholder="0 to 1 (blank = 0)",
            wire=(r"^warmup_ratio\b",),
            wire_rank=10,
        ),
        FormField(
            "lr_scheduler",
            "Learning-rate scheduler",
            Kind.SELECT,
            options=(("linear", "linear"), ("cosine", "cosine")),
            wire=(r"^lr_scheduler",),
            wire_rank=10,
        ),
        FormField(
            "validation_file",
            "Validation file id",
            check=pattern_check(
                _FILE_ID, "The validation file is a Together file id (file-…): letters, digits, - and _."
            ),
            placeholder="file-… (optional)",
            wire=(r"^validation_file\b",),
            wire_rank=8,
        ),
        FormField(
            "wandb_project",
            "W&B project",
            check=pattern_check(_WANDB, "The W&B project name may contain letters, digits, ., - and _ (at most 128)."),
            placeholder="optional: logs the run to Weights & Biases (needs a W&B key at Together)",
            wire=(r"^wandb",),
            wire_rank=10,
        ),
    ),
)

FIELD_IDS: Final = frozenset(f.id for f in TOGETHER_FORM.fields)


def _bool(value: ParamValue | None) -> bool | None:
    return None if value is None else value in (True, "true")


def _num(value: ParamValue | None) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole_of(value: ParamValue | None) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


def to_create_request(spec: FineTuneSpec, *, default_rank: int | None = None) -> CreateFineTuneRequest:
    """The spec as Together's `POST /fine-tunes` body. Only what the user gave is sent, except what the spec makes
    required (the SFT method's `train_on_inputs`, LoRA's rank and alpha)."""
    p = spec.parameters
    unknown = set(p) - FIELD_IDS
    if unknown:
        raise ValueError(f"Together does not take {', '.join(sorted(unknown))}")
    dpo = Method.DPO in spec.methods
    method: TrainingMethodSFT | TrainingMethodDPO
    if dpo:
        method = TrainingMethodDPO(
            dpo_beta=_num(p.get("dpo_beta")),
            rpo_alpha=_num(p.get("rpo_alpha")),
            simpo_gamma=_num(p.get("simpo_gamma")),
            dpo_normalize_logratios_by_length=_bool(p.get("dpo_normalize")),
            dpo_reference_free=_bool(p.get("dpo_reference_free")),
        )
    else:
        inputs = p.get("train_on_inputs")
        method = TrainingMethodSFT(train_on_inputs="auto" if inputs in (None, "auto") else inputs == "true")
    training: LoraTrainingType | FullTrainingType
    if spec.option == FULL:
        training = FullTrainingType()
    else:
        rank = _whole_of(p.get("lora_r")) or default_rank or DEFAULT_LORA_RANK
        modules = p.get("lora_modules")
        training = LoraTrainingType(
            lora_r=rank,
            lora_alpha=_whole_of(p.get("lora_alpha")) or rank * 2,
            lora_dropout=_num(p.get("lora_dropout")),
            lora_trainable_modules=str(modules) if modules is not None else None,
        )
    scheduler = p.get("lr_scheduler")
    lr_scheduler = None
    if scheduler == "cosine":
        lr_scheduler = LRScheduler(
            lr_scheduler_type="cosine", lr_scheduler_args=CosineSchedulerArgs(min_lr_ratio=0.0, num_cycles=0.5)
        )
    elif scheduler == "linear":
        lr_scheduler = LRScheduler(lr_scheduler_type="linear", lr_scheduler_args=LinearSchedulerArgs(min_lr_ratio=0.0))
    batch = p.get("batch_size")
    validation = p.get("validation_file")
    wandb = p.get("wandb_project")
    return CreateFineTuneRequest(
        training_file=spec.dataset_id,
        model=spec.base_model,
        validation_file=str(validation) if validation is not None else None,
        n_epochs=_whole_of(p.get("n_epochs")),
        n_checkpoints=_whole_of(p.get("n_checkpoints")),
        n_evals=_whole_of(p.get("n_evals")),
        batch_size="max" if batch == "max" else _whole_of(batch),
        learning_rate=_num(p.get("learning_rate")),
        lr_scheduler=lr_scheduler,
        warmup_ratio=_num(p.get("warmup_ratio")),
        suffix=spec.slug,
        training_method=method,
        training_type=training,
        wandb_project_name=str(wandb) if wandb is not None else None,
    )


def check_limits(spec: FineTuneSpec, limits: object | None) -> dict[str, str]:
    """Field id → what is wrong, for the bounds that depend on the base model. `limits` is the model's
    `ModelLimits` when the catalog has it; anything else (None: not loaded yet) checks the widest bounds."""
    known = isinstance(limits, ModelLimits)
    bounds = limits if isinstance(limits, ModelLimits) else WIDEST_LIMITS
    model = spec.base_model
    within = f"for {model}" if known else "(Together's widest bounds: this model's own limits are not loaded yet)"
    p = spec.parameters
    errors: dict[str, str] = {}
    if Method.SFT in spec.methods and Method.DPO in spec.methods:
        errors["enable_dpo"] = "Together trains with SFT or DPO, not both: switch SFT off to train with DPO."
    if len(spec.slug) > MAX_SUFFIX:
        errors[SLUG] = f"Together's model suffix is at most {MAX_SUFFIX} characters ({len(spec.slug)} given)."
    full = spec.option == FULL
    if full and known and not bounds.full_allowed:
        errors["training_type"] = f"Full training is not available for {model}: choose LoRA."
    _at_most(errors, "n_epochs", _whole_of(p.get("n_epochs")), 1, bounds.max_num_epochs, "Epochs", within)
    _at_most(errors, "n_evals", _whole_of(p.get("n_evals")), 0, bounds.max_num_evals, "Evaluations", within)
    if bounds.max_num_checkpoints is not None:
        high = bounds.max_num_checkpoints
        _at_most(errors, "n_checkpoints", _whole_of(p.get("n_checkpoints")), 1, high, "Checkpoints", within)
    rate = _num(p.get("learning_rate"))
    if rate is not None and not bounds.min_learning_rate <= rate <= bounds.max_learning_rate:
        errors["learning_rate"] = (
            f"The learning rate must be from {bounds.min_learning_rate:g} to {bounds.max_learning_rate:g} {within}."
        )
    side = bounds.full_training if full else bounds.lora_training
    batch = _whole_of(p.get("batch_size"))
    if side is not None and batch is not None:
        high = side.max_batch_size_dpo if Method.DPO in spec.methods else side.max_batch_size
        if not side.min_batch_size <= batch <= high:
            errors["batch_size"] = f'Batch size must be "max" or from {side.min_batch_size} to {high} {within}' + (
                " for DPO." if Method.DPO in spec.methods else "."
            )
    rank = _whole_of(p.get("lora_r"))
    lora = bounds.lora_training
    if not full and lora is not None and rank is not None and rank > lora.max_rank:
        errors["lora_r"] = f"LoRA rank must be from 1 to {lora.max_rank} {within}."
    if p.get("n_evals") and not p.get("validation_file"):
        errors["n_evals"] = "Evaluations need a validation file: give its id, or leave evaluations blank."
    return errors


def _at_most(
    errors: dict[str, str], field_id: str, value: int | None, low: int, high: int, what: str, within: str
) -> None:
    if value is not None and not low <= value <= high:
        errors[field_id] = f"{what} must be a whole number from {low} to {high} {within}."
