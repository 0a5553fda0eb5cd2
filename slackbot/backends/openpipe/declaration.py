"""OpenPipe, declared once: its settings, factory, status table, form and capabilities."""

from __future__ import annotations

from typing import Final

from slackbot.backends.declaration import BackendDeclaration, BackendSettings, Capabilities
from slackbot.backends.openpipe.datasets import OPENPIPE_DATASET_RULES
from slackbot.backends.openpipe.fields import OPENPIPE_FORM
from slackbot.backends.openpipe.statuses import OPENPIPE_STATUSES

OPENPIPE: Final = BackendDeclaration(
    name="openpipe",
    display_name="OpenPipe",
    settings=BackendSettings(
        api_key="OPENPIPE_API_KEY",
        base_url="OPENPIPE_BASE_URL",
        timeout_seconds="OPENPIPE_TIMEOUT_SECONDS",
        hint="your OpenPipe project API key (opk_...)",
        default_base_url="https://api.openpipe.ai/api/v1",
    ),
    factory="slackbot.backends.openpipe.backend:from_config",
    statuses=OPENPIPE_STATUSES,
    form=OPENPIPE_FORM,
    # From its v1 OpenAPI document: DELETE /models/{modelSlug}, POST /chat/completions, POST /datasets with
    # POST /datasets/{datasetId}/entries. No cancel, price, metrics, ETA or events endpoint.
    capabilities=Capabilities(delete=True, chat_completions=True, dataset_upload=True),
    dataset_rules=OPENPIPE_DATASET_RULES,
)
