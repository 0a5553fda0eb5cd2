"""Together AI, declared once: its settings, factory, status table, form and capabilities."""

from __future__ import annotations

from typing import Final

from slackbot.backends.declaration import BackendDeclaration, BackendSettings, Capabilities
from slackbot.backends.together.datasets import TOGETHER_DATASET_RULES
from slackbot.backends.together.fields import TOGETHER_FORM
from slackbot.backends.together.statuses import TOGETHER_STATUSES

TOGETHER: Final = BackendDeclaration(
    name="together",
    display_name="Together",
    settings=BackendSettings(
        api_key="TOGETHER_API_KEY",
        base_url="TOGETHER_BASE_URL",
        timeout_seconds="TOGETHER_TIMEOUT_SECONDS",
        hint="your Together API key (api.together.ai, Settings → API keys)",
        default_base_url="https://api.together.ai",
        api_path="/v1",  # TOGETHER_BASE_URL has the SDK's meaning: the API's paths carry /v1
    ),
    factory="slackbot.backends.together.backend:from_config",
    statuses=TOGETHER_STATUSES,
    form=TOGETHER_FORM,
    # From its fine-tuning API (shared/together): POST /fine-tunes/{id}/cancel, DELETE /fine-tunes/{id},
    # POST /fine-tunes/estimate-price, GET .../metrics, progress.seconds_remaining, GET .../events, and
    # POST /chat/completions on the job's model_output_name; files uploaded with purpose fine-tune.
    capabilities=Capabilities(
        cancel=True,
        delete=True,
        price_estimate=True,
        metrics=True,
        eta=True,
        events=True,
        chat_completions=True,
        dataset_upload=True,
    ),
    dataset_rules=TOGETHER_DATASET_RULES,
    follows_by_id=True,
)
