"""ModalMetadata survives private_metadata and refuses anything this app did not write."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from slackbot.forms import PRIVATE_METADATA_LIMIT, MetadataError, ModalMetadata


def test_round_trip() -> None:
    meta = ModalMetadata(
        team_id="T123", user_id="U456", channel_id="C789", thread_ts="1700000000.000100", origin="shortcut"
    )
    assert ModalMetadata.decode(meta.encode()) == meta
    retry = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", origin="retry", retry_of=42)
    assert ModalMetadata.decode(retry.encode()) == retry


def test_largest_metadata_fits_private_metadata() -> None:
    meta = ModalMetadata(
        team_id="T" * 64,
        user_id="U" * 64,
        channel_id="C" * 64,
        thread_ts="1" * 20 + "." + "2" * 11,
        origin="shortcut",
        retry_of=2**62,
    )
    assert len(meta.encode()) <= PRIVATE_METADATA_LIMIT
    assert ModalMetadata.decode(meta.encode()) == meta


def test_fields_are_bounded_at_construction() -> None:
    with pytest.raises(ValidationError):
        ModalMetadata(team_id="T" * 65, user_id="U1", channel_id="C1")
    with pytest.raises(ValidationError):
        ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", thread_ts="not-a-ts")


GOOD = {"team_id": "T1", "user_id": "U1", "channel_id": "C1", "origin": "command"}


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "not json",
        "[]",
        json.dumps(GOOD | {"extra": "field"}),
        json.dumps(GOOD | {"origin": "webhook"}),
        json.dumps({k: v for k, v in GOOD.items() if k != "channel_id"}),
        json.dumps(GOOD | {"retry_of": "seven"}),
        json.dumps(GOOD | {"user_id": "U1 <script>"}),
        "x" * (PRIVATE_METADATA_LIMIT + 1),
    ],
)
def test_tampered_or_foreign_metadata_raises_a_clear_error(text: object) -> None:
    with pytest.raises(MetadataError, match="private_metadata") as caught:
        ModalMetadata.decode(text)
    # The message names the problem, never echoes the (possibly huge or hostile) value.
    assert "<script>" not in str(caught.value)
    assert len(str(caught.value)) < 300


def test_decode_names_the_bad_field() -> None:
    with pytest.raises(MetadataError, match="origin"):
        ModalMetadata.decode(json.dumps(GOOD | {"origin": "webhook"}))
