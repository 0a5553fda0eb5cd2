"""Where a modal came from and where its job should report, carried in `private_metadata`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

PRIVATE_METADATA_LIMIT: Final = 3000

# --- modal metadata -----------------------------------------------------------------------------------------


class MetadataError(ValueError):
    """private_metadata that this app did not write (or that an older, incompatible version wrote)."""


# --- values kept for hidden fields ---------------------------------------------------------------------------
# A rebuild (provider or switch changed) only sees the inputs on screen, so the values of inputs it is about to
# hide travel in the metadata and are put back when the inputs are shown again. Only the fields the form can
# hide are kept: the switches and the SFT / DPO hyperparameters (slug, pruning rules and temperature are always
# shown; a base model belongs to its provider's list).
KeptField = Literal[
    "enable_sft",
    "sft_batch_size",
    "sft_lr_multiplier",
    "sft_epochs",
    "sft_learning_rate",
    "enable_dpo",
    "dpo_variant",
    "dpo_beta",
    "dpo_lr_multiplier",
    "dpo_epochs",
    "dpo_adapter_weight",
    "dpo_batch_size",
]
KEPT_FIELDS: Final[tuple[KeptField, ...]] = get_args(KeptField)
_KEPT_TOGGLES: Final = frozenset({"enable_sft", "enable_dpo"})
# Any sensible value of these fields is a short ASCII word: a number, "auto", "DPO" or "APO Zero". A value
# longer than KEPT_TEXT_MAX, or with other characters (non-ASCII such as Unicode digits, tabs, ...), is NOT
# kept: it is dropped (lost) when its input is hidden. The bound keeps the encoded metadata far below Slack's
# 3000 characters whatever was typed: the worst case, every kept character a `"` escaped to two, is under
# 1,900 characters (see tests/forms/test_kept.py).
KEPT_TEXT_MAX: Final = 64
_KEPT_TEXT: Final = re.compile(rf"[\x20-\x7e]{{1,{KEPT_TEXT_MAX}}}")


def keepable(name: str, value: object) -> bool:
    """Whether `value` of field `name` may be kept in the metadata while its input is hidden."""
    if name in _KEPT_TOGGLES:
        return isinstance(value, bool)
    return name in KEPT_FIELDS and isinstance(value, str) and _KEPT_TEXT.fullmatch(value) is not None


def _check_kept(kept: dict[KeptField, bool | str]) -> dict[KeptField, bool | str]:
    for name, value in kept.items():
        if not keepable(name, value):
            raise ValueError(f"kept value for {name} is not keepable")
    return kept


_SlackId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


class ModalMetadata(BaseModel):
    """Where the modal came from and where its job should report; travels in `private_metadata`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_id: str = _SlackId
    user_id: str = _SlackId
    channel_id: str = _SlackId
    thread_ts: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?$")
    origin: Literal["command", "shortcut", "retry"] = "command"
    retry_of: int | None = Field(default=None, ge=1, le=2**63 - 1)  # a job id (a bigint)
    # Values of inputs the modal does not show right now (see `keepable`); never submitted.
    kept: Annotated[dict[KeptField, bool | str], AfterValidator(_check_kept)] = Field(default_factory=dict)

    def with_kept(self, kept: Mapping[KeptField, object]) -> ModalMetadata:
        """This metadata keeping the keepable ones of `kept` (anything else is dropped, never an error)."""
        values = {name: value for name, value in kept.items() if keepable(name, value)}
        return ModalMetadata.model_validate({**self.model_dump(), "kept": values})

    def encode(self) -> str:
        # Nothing kept: the same text as before `kept` existed.
        text = self.model_dump_json(exclude_none=True, exclude=None if self.kept else {"kept"})
        # The field bounds above keep this far below Slack's limit; the assert guards future fields.
        assert len(text) <= PRIVATE_METADATA_LIMIT, "private_metadata over Slack's 3000-char limit"
        return text

    @classmethod
    def decode(cls, text: object) -> ModalMetadata:
        if not isinstance(text, str) or not text:
            raise MetadataError("The modal's private_metadata is missing or not a string.")
        if len(text) > PRIVATE_METADATA_LIMIT:
            raise MetadataError("The modal's private_metadata is longer than Slack allows; it was not ours.")
        try:
            return cls.model_validate_json(text)
        except PydanticValidationError as exc:
            fields = sorted({_field_name(err["loc"]) for err in exc.errors()})
            # Name the fields only: the raw value is user-controlled and could be anything.
            raise MetadataError(
                "The modal's private_metadata is not valid modal metadata (bad: " + ", ".join(fields) + ")."
            ) from None


def _field_name(loc: tuple[int | str, ...]) -> str:
    """The top-level field an error is about. Deeper parts (`kept`'s keys) and unknown names are user-controlled
    text, so they are never echoed."""
    if not loc:
        return "(whole value)"
    return str(loc[0]) if loc[0] in ModalMetadata.model_fields else "(unknown field)"
