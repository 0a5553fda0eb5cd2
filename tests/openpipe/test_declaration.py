"""OpenPipe's one declaration: its capabilities agree with its OpenAPI document, its factory builds the backend."""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from slackbot.backends.declaration import BackendConfig
from slackbot.backends.openpipe import OPENPIPE, OpenPipeBackend
from slackbot.backends.openpipe.fields import OPENPIPE_FORM
from slackbot.backends.openpipe.statuses import OPENPIPE_STATUSES
from slackbot.backends.registry import capabilities, declaration, declared, form_for, status_table


def test_capabilities_are_what_the_openapi_document_offers(openapi: dict[str, Any]) -> None:
    paths: dict[str, dict[str, Any]] = openapi["paths"]
    caps = OPENPIPE.capabilities
    assert caps.delete == ("delete" in paths.get("/models/{modelSlug}", {}))
    assert caps.chat_completions == ("post" in paths.get("/chat/completions", {}))
    assert caps.dataset_upload == ("post" in paths.get("/datasets/{datasetId}/entries", {}))
    # Nothing in the document cancels a fine-tune, prices it, or reports its metrics, ETA or events.
    words = set(re.split(r"[/{}_-]+", " ".join(paths).lower().replace(" ", "/")))
    assert not words & {"cancel", "price", "cost", "estimate", "metrics", "loss", "eta", "events"}, words
    assert not (caps.cancel or caps.price_estimate or caps.metrics or caps.eta or caps.events)
    assert caps.names() == ("delete", "dataset_upload", "chat_completions")


def test_the_registry_lists_openpipe_with_its_tables() -> None:
    assert declared()[0] is OPENPIPE  # the first declared: the modal's default when several are on
    assert declaration("openpipe") is OPENPIPE
    assert status_table("openpipe") is OPENPIPE_STATUSES and form_for("openpipe") is OPENPIPE_FORM
    # A job of a backend no longer declared: no words, no form, no capability offered.
    assert status_table("gone-backend").words("TRAINING") is None and form_for("gone-backend") is None
    assert capabilities("gone-backend").names() == ()
    assert OPENPIPE.settings.api_key == "OPENPIPE_API_KEY"


def test_the_factory_builds_an_openpipe_backend_from_its_settings() -> None:
    key = SecretStr("opk_declared")
    backend = OPENPIPE.build(BackendConfig(api_key=key, base_url="http://127.0.0.1:9/api/v1", timeout_seconds=3.0))
    try:
        assert isinstance(backend, OpenPipeBackend) and backend.name == OPENPIPE.name
        assert backend.project.startswith("openpipe:127.0.0.1:9:") and "opk_declared" not in backend.project
    finally:
        backend.close()
