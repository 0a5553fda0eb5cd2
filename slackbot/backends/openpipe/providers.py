"""OpenPipe's training providers: the values of its form's option field (`trainingConfig.provider`)."""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    """Training providers, with the values OpenPipe's `trainingConfig.provider` uses (OpenPipe's option field)."""

    OPENPIPE = "openpipe"
    OPENPIPE_REWARD = "openpipeReward"
    OPENAI = "openai"
    GEMINI = "gemini"

    @property
    def label(self) -> str:
        return _PROVIDER_LABELS[self]

    @property
    def supports_preference(self) -> bool:
        """Whether DPO / preference tuning can be switched on for this provider."""
        return self in (Provider.OPENPIPE, Provider.OPENAI)

    @property
    def supports_sft_switch(self) -> bool:
        """Whether SFT can be switched off (only where preference tuning can replace it)."""
        return self.supports_preference


_PROVIDER_LABELS = {
    Provider.OPENPIPE: "OpenPipe (open models)",
    Provider.OPENPIPE_REWARD: "OpenPipe reward model",
    Provider.OPENAI: "OpenAI",
    Provider.GEMINI: "Google Gemini",
}
