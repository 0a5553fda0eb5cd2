"""Base models per provider, as listed by OpenPipe's v1 spec: the one place these lists live."""

from __future__ import annotations

from typing import Literal, get_args

from slackbot.backends.openpipe.providers import Provider

# OpenAI and Gemini base models are enums in the spec, so the wire models use these Literals directly.
OpenAIBaseModel = Literal[
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4o-mini-2024-07-18",
    "gpt-4o-2024-08-06",
    "gpt-3.5-turbo-0125",
]
GeminiBaseModel = Literal["models/gemini-1.0-pro-001", "models/gemini-1.5-flash-001-tuning"]

# For OpenPipe's own providers the spec takes any string (a listed model or an earlier fine-tune's slug);
# these are the models its description names.
OPENPIPE_BASE_MODELS: tuple[str, ...] = (
    "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B",
    "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen2.5-Coder-7B-Instruct",
    "Qwen/Qwen2.5-Coder-32B-Instruct",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2-VL-7B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-14B",
    "mistralai/Mistral-Nemo-Base-2407",
    "mistralai/Mistral-Small-24B-Base-2501",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "google/gemma-3-1b-it",
    "google/gemma-3-4b-it",
    "google/gemma-3-12b-it",
    "google/gemma-3-27b-it",
)
OPENPIPE_REWARD_BASE_MODELS: tuple[str, ...] = (
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Meta-Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-3B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen3-8B",
)
OPENAI_BASE_MODELS: tuple[str, ...] = get_args(OpenAIBaseModel)
GEMINI_BASE_MODELS: tuple[str, ...] = get_args(GeminiBaseModel)

BASE_MODELS: dict[Provider, tuple[str, ...]] = {
    Provider.OPENPIPE: OPENPIPE_BASE_MODELS,
    Provider.OPENPIPE_REWARD: OPENPIPE_REWARD_BASE_MODELS,
    Provider.OPENAI: OPENAI_BASE_MODELS,
    Provider.GEMINI: GEMINI_BASE_MODELS,
}

ALL_BASE_MODELS: frozenset[str] = frozenset(name for names in BASE_MODELS.values() for name in names)
