"""Contract tests: what the client sends and what the local Together answers both conform to the OpenAPI spec
(jsonschema) and to the `together==3.1.1` SDK's types."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
import yaml

from slackbot.backends.together.client import TogetherClient
from slackbot.backends.together.wire import (
    CreateFineTuneRequest,
    FullTrainingType,
    LoraTrainingType,
    LRScheduler,
    MetricsFilter,
    TrainingMethodDPO,
    TrainingMethodSFT,
)
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import SUPPORTED_MODELS, LocalTogether
from tests.together import sdk
from tests.together.conftest import HTTP, KEY, PACKAGED_SPEC, Contract, shared_spec_path, template_of

MODEL = SUPPORTED_MODELS[0]


def bodies(training_file: str) -> dict[str, CreateFineTuneRequest]:
    """The create bodies the bot sends: SFT with LoRA, full SFT, DPO with LoRA, and one with every field."""
    lora = LoraTrainingType(lora_r=16, lora_alpha=32)
    return {
        "sft-lora": CreateFineTuneRequest(training_file=training_file, model=MODEL, training_type=lora),
        "sft-full": CreateFineTuneRequest(
            training_file=training_file,
            model=MODEL,
            n_epochs=2,
            batch_size="max",
            training_type=FullTrainingType(),
            training_method=TrainingMethodSFT(train_on_inputs=False),
        ),
        "dpo-lora": CreateFineTuneRequest(
            training_file=training_file,
            model=MODEL,
            learning_rate=5e-6,
            training_type=lora,
            training_method=TrainingMethodDPO(dpo_beta=0.1, rpo_alpha=0.0, dpo_reference_free=False),
        ),
        "everything": CreateFineTuneRequest(
            training_file=training_file,
            validation_file=training_file,
            model=MODEL,
            n_epochs=3,
            n_checkpoints=2,
            n_evals=4,
            batch_size=16,
            learning_rate=1e-4,
            lr_scheduler=LRScheduler(
                lr_scheduler_type="cosine", lr_scheduler_args={"min_lr_ratio": 0.1, "num_cycles": 0.5}
            ),
            warmup_ratio=0.05,
            max_grad_norm=1.0,
            weight_decay=0.01,
            suffix="support-v1",
            training_method=TrainingMethodSFT(train_on_inputs="auto"),
            training_type=LoraTrainingType(
                lora_r=8, lora_alpha=16, lora_dropout=0.05, lora_trainable_modules="all-linear"
            ),
        ),
    }


def test_every_request_the_client_sends_conforms(
    api: LocalTogether, client: TogetherClient, clock: ManualClock, contract: Contract
) -> None:
    training_file = client.list_files().fine_tune_files()[0].id
    jobs = []
    for request in bodies(training_file).values():
        client.estimate_price(request.estimate_request())
        jobs.append(client.create_job(request))
    clock.advance(200)
    client.list_jobs()
    client.get_job(jobs[0].id)
    client.list_events(jobs[0].id)
    client.metrics(jobs[0].id)
    client.metrics(jobs[0].id, MetricsFilter(global_step_from=2, global_step_to=4))
    client.cancel_job(jobs[1].id)
    client.delete_job(jobs[2].id)
    client.model_limits(MODEL)
    client.supported_models()
    client.upload_file("fresh.jsonl", b'{"text": "a"}\n')
    creates = [r for r in api.requests if (r.method, r.path) == ("POST", "/fine-tunes")]
    estimates = [r for r in api.requests if r.path == "/fine-tunes/estimate-price"]
    assert len(creates) == len(estimates) == 4
    for sent in creates:
        contract.validate_request("POST", "/fine-tunes", sent.json)
        sdk.check_create_body(sent.json)
    for sent in estimates:
        contract.validate_request("POST", "/fine-tunes/estimate-price", sent.json)
    # Metrics filters travel as the SDK 3.1.1 sends them: in the query string, never as a GET body.
    metrics = [(r[2], q.json) for r, q in zip(api.raw_requests, api.requests, strict=True) if r[1].endswith("/metrics")]
    assert metrics == [({}, None), ({"global_step_from": "2", "global_step_to": "4"}, None)]
    # The upload's first step carries the fields the SDK sends (form fields, no file), and no other.
    upload = next(r for r in api.requests if (r.method, r.path) == ("POST", "/files"))
    assert set(upload.json) == {"purpose", "file_name", "file_type", "checksum"}
    assert upload.json["purpose"] == "fine-tune" and upload.json["file_type"] == "jsonl"
    assert all(r.json is None for r in api.requests if r.method in ("DELETE",) or r.path.endswith("/cancel"))


def test_bytes_on_the_wire() -> None:
    """What httpx actually sends: URL, headers, body; the base URL has the SDK's meaning (no /v1)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "ft-1", "status": "pending", "created_at": "x", "updated_at": "y"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    for base in ("https://api.example.test", "https://api.example.test/v1/"):
        client = TogetherClient(sdk_key(), base, client=http)
        client.create_job(CreateFineTuneRequest(training_file="file-1", model=MODEL))
        client.get_job("../files")
    http.close()
    assert [str(r.url) for r in seen[::2]] == ["https://api.example.test/v1/fine-tunes"] * 2
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].content == b'{"training_file":"file-1","model":"' + MODEL.encode() + b'"}'
    assert seen[1].url.raw_path == b"/v1/fine-tunes/%2E%2E%2Ffiles"  # an id is one path segment, always


def sdk_key() -> Any:
    from pydantic import SecretStr

    return SecretStr(KEY)


def _raw(api: LocalTogether, method: str, path: str, body: Any = None, key: str = KEY, **kw: Any) -> httpx.Response:
    return HTTP.request(method, api.url + "/v1" + path, json=body, headers={"Authorization": f"Bearer {key}"}, **kw)


def test_every_answer_of_the_local_api_conforms(
    api: LocalTogether, client: TogetherClient, clock: ManualClock, contract: Contract
) -> None:
    training_file = client.list_files().fine_tune_files()[0].id
    ids = []
    for request in bodies(training_file).values():
        ids.append(client.create_job(request).id)
        clock.advance(130)  # spread the jobs over the statuses
    ids.append(client.create_job(bodies(training_file)["sft-lora"]).id)
    clock.advance(150)
    api.fail_job(ids[-2], "CUDA out of memory at step 3")
    client.cancel_job(ids[-3])
    checked: set[tuple[str, str, int]] = set()

    def check(method: str, path: str, body: Any = None, key: str = KEY, **kw: Any) -> Any:
        response = _raw(api, method, path, body, key, **kw)
        payload = response.json()
        template = template_of(path)
        if response.status_code == 200:
            contract.validate_response(method, template, 200, payload)
            sdk.check_response(method, template, payload)
        elif contract.documents(method, template, response.status_code):
            contract.validate_response(method, template, response.status_code, payload)
        else:
            contract.validate_error(payload)  # an error the spec does not list still has its error shape
        checked.add((method, template, response.status_code))
        return payload

    listed = check("GET", "/fine-tunes")
    assert {j["status"] for j in listed["data"]} >= {"completed", "running", "cancel_requested", "error"}
    for job in listed["data"]:
        full = check("GET", f"/fine-tunes/{job['id']}")
        assert full["events"], "every job has at least its job_pending event"
        check("GET", f"/fine-tunes/{job['id']}/events")
        check("GET", f"/fine-tunes/{job['id']}/metrics")
    check("GET", f"/fine-tunes/{ids[0]}/metrics", {"global_step_from": 3})
    check("GET", "/files")
    check("GET", f"/files/{training_file}")
    check("GET", "/fine-tunes/models/supported")
    check("GET", "/fine-tunes/models/limits", params={"model_name": MODEL})
    check("GET", "/fine-tunes/models/limits", params={"model_name": "nope/nope"})
    good = bodies(training_file)["sft-lora"].to_wire()
    check("POST", "/fine-tunes/estimate-price", bodies(training_file)["dpo-lora"].estimate_request().to_wire())
    fresh = check("POST", "/fine-tunes", good)["id"]
    check("POST", f"/fine-tunes/{fresh}/cancel")
    check("DELETE", f"/fine-tunes/{fresh}")
    # Errors: each in Together's error shape.
    check("GET", "/fine-tunes", key="tgp_nope")
    check("GET", f"/fine-tunes/{fresh}")
    check("DELETE", f"/fine-tunes/{fresh}")
    check("POST", "/fine-tunes", {**good, "n_epochs": 0})
    check("POST", "/fine-tunes", {"model": MODEL})
    check("POST", f"/fine-tunes/{ids[0]}/cancel")  # completed: cannot be cancelled
    api.budget = 0.0
    refused = check(
        "POST", "/fine-tunes/estimate-price", bodies(training_file)["sft-full"].estimate_request().to_wire()
    )
    assert refused["allowed_to_proceed"] is False and refused["user_limit"] == 0
    statuses = {status for _, _, status in checked}
    assert statuses == {200, 400, 401, 404}
    # The upload flow the SDK uses (newer than the spec): 302 to a presigned PUT, then preprocess.
    auth = {"Authorization": f"Bearer {KEY}"}
    data = b'{"text": "fresh"}\n'
    fields = {
        "purpose": "fine-tune",
        "file_name": "f.jsonl",
        "file_type": "jsonl",
        "checksum": hashlib.sha256(data).hexdigest(),
    }
    start = HTTP.post(api.url + "/v1/files", headers=auth, files={k: (None, v) for k, v in fields.items()})
    assert start.status_code == 302 and start.headers["x-together-file-id"].startswith("file-")
    file_id = start.headers["x-together-file-id"]
    assert HTTP.put(start.headers["location"].replace("Signature=", "Signature=x"), content=data).status_code == 403
    assert HTTP.put(start.headers["location"], content=b"other bytes").status_code == 400
    assert HTTP.put(start.headers["location"], content=data).status_code == 200
    processed = HTTP.post(api.url + f"/v1/files/{file_id}/preprocess", headers=auth).json()
    contract.validate_response("GET", "/files/{id}", 200, processed)  # the spec's FileResponse
    sdk.check_response("POST", "/files/{id}/preprocess", processed)
    again = HTTP.post(api.url + "/v1/files", headers=auth, files={k: (None, v) for k, v in fields.items()})
    assert (again.status_code, again.json()) == (409, {"file_id": file_id})
    old_upload = HTTP.post(
        api.url + "/v1/files/upload",
        headers={"Authorization": f"Bearer {KEY}"},
        data={"purpose": "fine-tune", "file_name": "old.jsonl"},
        files={"file": ("old.jsonl", b'{"text": "x"}\n')},
    )
    assert old_upload.status_code == 200
    contract.validate_response("POST", "/files/upload", 200, old_upload.json())
    sdk.check_response("POST", "/files/upload", old_upload.json())


def test_the_spec_is_a_verbatim_copy_of_the_shared_one(openapi: dict[str, Any]) -> None:
    shared = shared_spec_path()
    if shared is None:  # outside the project's machine: the packaged copy is the contract
        assert PACKAGED_SPEC.exists()
        return
    assert yaml.safe_load(shared.read_text("utf-8")) == openapi


@pytest.mark.parametrize("seed", [True, False])
def test_seeded_files(seed: bool, contract: Contract) -> None:
    with LocalTogether(KEY, seed=seed) as api:
        payload = _raw(api, "GET", "/files").json()
    contract.validate_response("GET", "/files", 200, payload)
    sdk.check_response("GET", "/files", payload)
    assert (len([f for f in payload["data"] if f["purpose"] == "fine-tune"]) >= 3) is seed


def test_the_contract_refuses_what_breaks_it(contract: Contract) -> None:
    """The validators are not vacuous: a missing required field, a wrong type or an unknown shape fails."""
    job = {"id": "ft-1", "status": "running", "created_at": "a", "updated_at": "b"}
    contract.validate_response("GET", "/fine-tunes", 200, {"data": [job]})
    with pytest.raises(Exception, match="'status' is a required property"):
        contract.validate_response(
            "GET", "/fine-tunes", 200, {"data": [{k: v for k, v in job.items() if k != "status"}]}
        )
    with pytest.raises(Exception, match="is not one of"):
        contract.validate_response("GET", "/fine-tunes/{id}", 200, {**job, "status": "exploded"})
    with pytest.raises(Exception, match="'training_file' is a required property"):
        contract.validate_request("POST", "/fine-tunes", {"model": MODEL})
    with pytest.raises(Exception, match="is not valid under any of the given schemas"):
        contract.validate_request("POST", "/fine-tunes", {"training_file": "f", "model": MODEL, "batch_size": "huge"})
    with pytest.raises(Exception, match="'message' is a required property"):
        contract.validate_error({"error": {"type": "x"}})
