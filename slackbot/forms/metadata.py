"""Where a modal came from and where its job should report, carried in `private_metadata`."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

PRIVATE_METADATA_LIMIT: Final = 3000

# --- modal metadata -----------------------------------------------------------------------------------------


class MetadataError(ValueError):
    """private_metadata that this app did not write (or that an older, incompatible version wrote)."""


_SlackId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


class ModalMetadata(BaseModel):
    """Where the modal came from and where its job should report; travels in `private_metadata`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_id: str = _SlackId
    user_id: str = _SlackId
    channel_id: str = _SlackId
    thread_ts: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?$")
    origin: Literal["command", "shortcut", "retry"] = "command"
    retry_of: int | None = Field(default=None, ge=1)

    def encode(self) -> str:
        text = self.model_dump_json(exclude_none=True)
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
            fields = sorted({".".join(str(p) for p in err["loc"]) or "(whole value)" for err in exc.errors()})
            # Name the fields only: the raw value is user-controlled and could be anything.
            raise MetadataError(
                "The modal's private_metadata is not valid modal metadata (bad: " + ", ".join(fields) + ")."
            ) from None
