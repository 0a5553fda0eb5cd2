"""Together's wire models and status table: exact where the bot relies on a field, tolerant of what grows."""

from __future__ import annotations

import typing
from typing import Any

import pydantic
import pytest
from together.types import FinetuneResponse

from slackbot.backends.together.statuses import TOGETHER_STATUSES, together_lifecycle
from slackbot.backends.together.wire import (
    CreateFineTuneRequest,
    EventList,
    FileList,
    FineTuneJob,
    FineTuneList,
    LoraTrainingType,
    ModelLimits,
    PriceEstimate,
    TrainingMethodSFT,
)
from slackbot.domain.lifecycle import Lifecycle

EXPECTED = {
    "pending": Lifecycle.QUEUED,
    "queued": Lifecycle.QUEUED,
    "running": Lifecycle.RUNNING,
    "compressing": Lifecycle.RUNNING,
    "uploading": Lifecycle.RUNNING,
    "cancel_requested": Lifecycle.CANCELLING,
    "completed": Lifecycle.SUCCEEDED,
    "error": Lifecycle.FAILED,
    "cancelled": Lifecycle.CANCELLED,
}


def test_the_status_table_maps_every_status_of_the_spec_and_the_sdk(openapi: dict[str, Any]) -> None:
    in_spec = set(openapi["components"]["schemas"]["FinetuneJobStatus"]["enum"])
    in_sdk = set(typing.get_args(FinetuneResponse.model_fields["status"].annotation))
    assert in_spec == in_sdk == set(TOGETHER_STATUSES.statuses) == set(EXPECTED)
    for status, lifecycle in EXPECTED.items():
        assert together_lifecycle(status) is lifecycle, status
        words = TOGETHER_STATUSES.words(status)
        assert words is not None and words.label and words.news
    terminal = {s for s in EXPECTED if together_lifecycle(s).is_terminal}
    assert terminal == {"completed", "error", "cancelled"}  # the spec's terminal statuses (NOTES.md)


@pytest.mark.parametrize("status", ["paused", "COMPLETED", "", "evaluating"])
def test_a_status_the_service_adds_later_is_unknown_and_still_followed(status: str) -> None:
    assert together_lifecycle(status) is Lifecycle.UNKNOWN
    assert not together_lifecycle(status).is_terminal


def test_answers_keep_new_statuses_and_ignore_new_fields() -> None:
    listed = FineTuneList.model_validate(
        {"data": [{"id": "ft-1", "status": "evaluating", "created_at": "a", "updated_at": "b", "brand_new": {"x": 1}}]}
    )
    assert listed.data[0].status == "evaluating"
    events = EventList.model_validate(
        {
            "data": [
                {"created_at": "a", "type": "early_stopped", "level": None, "message": "m", "object": "fine-tune-event"}
            ]
        }
    )
    assert events.data[0].type == "early_stopped" and events.data[0].level is None
    files = FileList.model_validate(
        {"data": [{"id": "file-1", "purpose": "calibration", "FileType": "jsonl", "Processed": True, "future": 1}]}
    )
    assert files.fine_tune_files() == [] and files.data[0].file_type == "jsonl"


@pytest.mark.parametrize(
    "broken",
    [{"status": "running"}, {"id": "ft-1"}, {"id": "", "status": "running"}, {"id": "ft-1", "status": 3}],
)
def test_a_job_without_its_id_or_status_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        FineTuneJob.model_validate(broken)


def test_limits_say_whether_full_training_is_allowed() -> None:
    base = {"model_name": "m", "max_num_epochs": 3, "max_num_evals": 1, "max_learning_rate": 1, "min_learning_rate": 0}
    full = {"max_batch_size": 8, "max_batch_size_dpo": 8, "min_batch_size": 8}
    assert not ModelLimits.model_validate(base).full_allowed
    assert ModelLimits.model_validate({**base, "full_training": full}).full_allowed
    assert not ModelLimits.model_validate({**base, "full_training": full, "supports_full_training": False}).full_allowed


def test_an_unavailable_estimate_is_read() -> None:
    estimate = PriceEstimate.model_validate({"estimation_available": False, "unavailable_reason": "multimodal_dataset"})
    assert estimate.allowed_to_proceed is None and estimate.unavailable_reason == "multimodal_dataset"


def test_requests_are_strict_and_send_only_what_was_set() -> None:
    with pytest.raises(pydantic.ValidationError):
        CreateFineTuneRequest.model_validate({"training_file": "f", "model": "m", "learning_rate_multiplier": 2})
    with pytest.raises(pydantic.ValidationError):
        CreateFineTuneRequest(training_file="f", model="m", n_epochs=0)
    with pytest.raises(pydantic.ValidationError):
        LoraTrainingType(lora_r=0, lora_alpha=8)
    request = CreateFineTuneRequest(
        training_file="f", model="m", batch_size="max", training_method=TrainingMethodSFT(train_on_inputs=False)
    )
    assert request.to_wire() == {
        "training_file": "f",
        "model": "m",
        "batch_size": "max",
        "training_method": {"method": "sft", "train_on_inputs": False},
    }
    assert request.estimate_request().to_wire() == {
        "training_file": "f",
        "model": "m",
        "training_method": {"method": "sft", "train_on_inputs": False},
    }
