"""A model slug is one URL path segment, whatever it contains: it can never reach another endpoint."""

from __future__ import annotations

import pytest

from slackbot.backends.base import NotFoundError
from slackbot.backends.openpipe.client import OpenPipeClient
from slackbot.sandbox.openpipe_api import LocalOpenPipe


@pytest.mark.parametrize(
    ("slug", "sent"),
    [
        ("..", "/models/%2E%2E"),
        (".", "/models/%2E"),
        ("../datasets", "/models/%2E%2E%2Fdatasets"),
        ("a/../../x", "/models/a%2F%2E%2E%2F%2E%2E%2Fx"),
        ("x?y#z", "/models/x%3Fy%23z"),
    ],
)
def test_get_and_delete_send_the_slug_as_one_segment(
    client: OpenPipeClient, api: LocalOpenPipe, slug: str, sent: str
) -> None:
    for call in (client.get_model, client.delete_model):
        before = len(api.requests)
        # The service has no such model: a 404, not another endpoint's answer (the model list, the datasets).
        with pytest.raises(NotFoundError):
            call(slug)
        assert [r.path for r in api.requests[before:]] == [sent]
