"""The dataset-file listeners as functions: a fake ack, real payload shapes. The flow itself runs over signed
HTTP in test_slack_flow.py."""

from __future__ import annotations

import threading
from typing import Any, cast

from slack_bolt import Ack as BoltAck

from slackbot import ids
from slackbot.backends.base import Method
from slackbot.forms import ModalMetadata
from slackbot.listeners.actions.dataset_upload import BUSY, DAMAGED, FilePool, on_file_submission, submitted_file

META = ModalMetadata(team_id="T0", user_id="U0ALICE", channel_id="C0GENERAL")
FILE = {"id": "F1", "name": "d.jsonl"}


class Ack:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kw: Any) -> None:
        self.calls.append(kw)


class Services:
    def __init__(self, verdict: dict[str, str] | Method) -> None:
        self.verdict, self.ran = verdict, 0

    def accept(self, *args: Any) -> dict[str, str] | Method:
        return self.verdict

    def run(self, *args: Any) -> None:
        self.ran += 1


def _view(file: dict[str, Any] | None = FILE, metadata: str | None = None) -> dict[str, Any]:
    files = [file] if file else []
    values = {ids.BLOCK_DATASET_FILE: {ids.ACTION_DATASET_FILE: {"type": "file_input", "files": files}}}
    return {"id": "V1", "private_metadata": metadata or META.encode(), "state": {"values": values}, "blocks": []}


BODY = {"team": {"id": "T0"}, "user": {"id": "U0ALICE"}}


def test_the_file_is_read_from_the_state() -> None:
    assert submitted_file(_view()) == FILE
    assert submitted_file(_view(None)) is None
    assert submitted_file({"state": {"values": {ids.BLOCK_DATASET_FILE: "junk"}}}) is None


def test_accepted_runs_after_the_ack() -> None:
    ack, services = Ack(), Services(Method.SFT)
    ran: list[tuple[Any, ...]] = []

    def later(fn: Any, *args: Any) -> bool:
        ran.append(args)
        return True

    on_file_submission(cast(BoltAck, ack), BODY, _view(), services, later)
    assert ack.calls == [{}]
    assert ran and ran[0][4:] == ("F1", Method.SFT, "V1")


def test_refusals_stay_in_the_modal() -> None:
    for verdict, view, expected in (
        ({ids.BLOCK_SLUG: "taken"}, _view(), {ids.BLOCK_SLUG: "taken"}),
        (Method.SFT, _view(metadata="{broken"), {ids.BLOCK_DATASET_FILE: DAMAGED}),
    ):
        ack = Ack()
        on_file_submission(cast(BoltAck, ack), BODY, view, Services(verdict), lambda fn, *a: True)
        assert ack.calls == [{"response_action": "errors", "errors": expected}]


def test_a_full_pool_is_said_in_the_modal() -> None:
    ack = Ack()
    on_file_submission(cast(BoltAck, ack), BODY, _view(), Services(Method.SFT), lambda fn, *a: False)
    assert ack.calls == [{"response_action": "errors", "errors": {ids.BLOCK_DATASET_FILE: BUSY}}]


def test_the_pool_bounds_what_waits_and_survives_a_failure() -> None:
    pool = FilePool(workers=1, waiting=2)
    gate, done = threading.Event(), threading.Event()
    assert pool(gate.wait, 5)
    assert pool(lambda: 1 / 0)  # logged, and its slot given back
    assert not pool(done.set)  # two already running or waiting
    gate.set()
    for _ in range(500):
        if pool(done.set):
            break
        threading.Event().wait(0.01)
    assert done.wait(5)
