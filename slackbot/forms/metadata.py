"""Where a modal came from and where its job should report, carried in `private_metadata`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from slackbot.backends.form import FIELD_ID, MAX_KEPT, FormDeclaration, keepable, keepable_value

PRIVATE_METADATA_LIMIT: Final = 3000

# --- modal metadata -----------------------------------------------------------------------------------------


class MetadataError(ValueError):
    """private_metadata that this app did not write (or that an older, incompatible version wrote)."""


# --- values kept for hidden fields ---------------------------------------------------------------------------
# A rebuild (option or switch changed) only sees the inputs on screen, so the values of inputs it is about to
# hide travel in the metadata and are put back when the inputs are shown again. Which fields may be kept, and
# of which kind, is the backend's form's to say (`backends.form.keepable`); the metadata itself bounds them: at
# most MAX_KEPT values, each a field id and a switch or a short ASCII word. Whatever was typed, the encoded
# metadata stays below Slack's 3000 characters (the worst case is in tests/forms/test_kept.py).


def _check_kept(kept: dict[str, bool | str]) -> dict[str, bool | str]:
    if len(kept) > MAX_KEPT:
        raise ValueError("too many kept values")
    for name, value in kept.items():
        if not FIELD_ID.fullmatch(name) or not keepable_value(value):
            raise ValueError("a kept value is not keepable")
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
    # The backend chosen in the modal, when several are on (absent otherwise: the same text as before).
    backend: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_-]*$")
    # A .jsonl file the message shortcut's message carried: the dataset when neither the picker nor the file input
    # is used (Slack cannot prefill a file_input).
    shared_file: str | None = Field(default=None, max_length=32, pattern=r"^F[A-Z0-9]+$")
    shared_file_name: str | None = Field(default=None, min_length=1, max_length=255)
    # Values of inputs the modal does not show right now (see `keepable`); never submitted.
    kept: Annotated[dict[str, bool | str], AfterValidator(_check_kept)] = Field(default_factory=dict)

    def with_kept(self, kept: Mapping[str, object], form: FormDeclaration) -> ModalMetadata:
        """This metadata keeping the values of `kept` the form lets keep (the rest is dropped, never an error)."""
        values = {name: value for name, value in kept.items() if keepable(form, name, value)}
        values = dict(list(values.items())[:MAX_KEPT])
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
