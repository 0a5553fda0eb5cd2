"""A job stored before the neutral spec (jobs.spec in OpenPipe's old shape) still loads, starts the same model,
shows the same settings, and its stored form still fills "Edit and retry"."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from slackbot.backends.base import FineTuneSpec, Method
from slackbot.backends.openpipe.fields import OPENPIPE_FORM
from slackbot.backends.openpipe.wire import to_create_request
from slackbot.blocks.card import settings_summary
from slackbot.blocks.modal import finetune_modal
from slackbot.forms import ModalMetadata
from slackbot.forms.state import with_kept
from slackbot.jobs.store import JobStore

# Exactly what `FineTuneSpec.model_dump(mode="json")` wrote before the neutral spec (commit 7292645).
OLD_SPEC = {
    "dataset_id": "ds-1",
    "slug": "old-openai",
    "provider": "openai",
    "base_model": "gpt-4o-mini-2024-07-18",
    "enable_sft": True,
    "sft": {"batch_size": 8, "learning_rate_multiplier": None, "epochs": 3.0, "learning_rate": None},
    "enable_preference": True,
    "preference": {
        "variant": None,
        "learning_rate_multiplier": None,
        "epochs": None,
        "beta": 0.1,
        "adapter_weight": None,
        "batch_size": 4,
    },
    "pruning_rule_ids": ["pr_1"],
    "default_temperature": 0.5,
}
OLD_FORM: dict[str, str | bool] = {
    "provider": "openai",
    "dataset": "ds-1",
    "slug": "old-openai",
    "sft_epochs": "3",
    "enable_dpo": True,
}

_JOB = (
    "INSERT INTO jobs (team_id, channel_id, requester_id, backend, project, slug, provider, base_model,"
    " dataset_id, dataset_name, spec, form_state, status, lifecycle, created_at, updated_at, status_changed_at,"
    " tracking, poll_failures) VALUES ('T1', 'C1', 'U1', 'openpipe', 'p1', 'old-openai', 'openai',"
    " 'gpt-4o-mini-2024-07-18', 'ds-1', 'Support', :spec, :form, 'TRAINING', 'running', :at, :at, :at, true, 0)"
)


def test_a_job_stored_in_the_old_spec_shape_loads_and_means_the_same(engine: Engine) -> None:
    at = datetime(2026, 7, 1, tzinfo=UTC).isoformat()
    with engine.begin() as conn:
        conn.execute(text(_JOB), {"spec": json.dumps(OLD_SPEC), "form": json.dumps(OLD_FORM), "at": at})
        job_id = conn.execute(text("SELECT id FROM jobs WHERE slug = 'old-openai'")).scalar_one()
    job = JobStore(engine).get(job_id)
    assert job is not None
    assert job.spec == FineTuneSpec(
        backend="openpipe",
        dataset_id="ds-1",
        slug="old-openai",
        base_model="gpt-4o-mini-2024-07-18",
        option="openai",
        methods=(Method.SFT, Method.DPO),
        parameters={
            "sft_batch_size": 8,
            "sft_epochs": 3.0,
            "dpo_beta": 0.1,
            "dpo_batch_size": 4,
            "pruning_rule_ids": ("pr_1",),
            "default_temperature": 0.5,
        },
    )
    # The same create request as before: every setting reaches the wire where it did.
    assert to_create_request(job.spec).to_wire() == {
        "datasetId": "ds-1",
        "slug": "old-openai",
        "trainingConfig": {
            "provider": "openai",
            "baseModel": "gpt-4o-mini-2024-07-18",
            "enable_sft": True,
            "enable_preference_tuning": True,
            "sft_hyperparameters": {"batch_size": 8, "n_epochs": 3.0},
            "preference_hyperparameters": {"beta": 0.1, "batch_size": 4},
        },
        "pruningRuleIds": ["pr_1"],
        "defaultTemperature": 0.5,
    }
    assert settings_summary(job) == (
        "SFT: epochs 3.0, batch size 8, LR multiplier provider default\n"
        "DPO: epochs provider default, beta 0.1, LR multiplier provider default, batch size 4"
    )
    assert job.form_state == OLD_FORM
    # Saved again, it is written in the neutral shape and reads back equal.
    assert FineTuneSpec.model_validate_json(job.spec.model_dump_json()) == job.spec
    assert "provider" not in job.spec.model_dump(mode="json")


def test_a_stored_form_and_an_open_modals_metadata_from_before_still_fill_the_form() -> None:
    # "Edit and retry" on an old job reopens the form from jobs.form_state as stored then.
    meta = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", origin="retry", retry_of=1)
    view = finetune_modal(meta, OLD_FORM, form=OPENPIPE_FORM, option="openai", base_models=["gpt-4o-mini-2024-07-18"])
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["sft_epochs"]["element"]["initial_value"] == "3"
    assert blocks["enable_dpo"]["element"]["initial_options"][0]["value"] == "on"
    assert blocks["slug"]["element"]["initial_value"] == "old-openai"
    # private_metadata of a modal opened by the previous version, with values kept for hidden inputs.
    old = (
        '{"team_id":"T1","user_id":"U1","channel_id":"C1","origin":"command",'
        '"kept":{"sft_epochs":"7","enable_dpo":true}}'
    )
    kept = ModalMetadata.decode(old).kept
    assert with_kept(OPENPIPE_FORM, {"provider": "openpipe"}, kept) == {
        "provider": "openpipe",
        "sft_epochs": "7",
        "enable_dpo": True,
    }
