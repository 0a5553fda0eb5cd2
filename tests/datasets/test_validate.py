"""The validator, rule by rule, on real files: each backend's formats, the reasons and their line numbers, the
counts, the first 20 errors, bounded lines, and the rules each backend declares against its sources."""

from __future__ import annotations

import dataclasses
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slackbot.backends.base import Method
from slackbot.backends.datasets import DatasetRules
from slackbot.backends.openpipe.datasets import ENTRY_KEYS, MESSAGE_KEYS, OPENPIPE_DATASET_RULES
from slackbot.backends.openpipe.declaration import OPENPIPE
from slackbot.backends.together.datasets import TOGETHER_DATASET_RULES
from slackbot.datasets.validate import (
    MAX_ERRORS,
    ErrorKind,
    check_lines,
    valid_lines,
    validate,
    validate_path,
)
from tests.datasets.conftest import GOOD_CHAT, chat, jsonl, write
from tests.openpipe.conftest import spec_path

OP, TG = OPENPIPE_DATASET_RULES, TOGETHER_DATASET_RULES
SFT, DPO = Method.SFT, Method.DPO

CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
TOOL_CHAT = {
    "messages": [
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "assistant", "content": "It is 42."},
    ],
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
}
OP_PREFERENCE = {**GOOD_CHAT, "rejected_message": {"role": "assistant", "content": "Go away."}}
TG_PREFERENCE = {
    "input": {"messages": [{"role": "user", "content": "Hi"}]},
    "preferred_output": [{"role": "assistant", "content": "Hello."}],
    "non_preferred_output": [{"role": "assistant", "content": "What."}],
}


def check(rules: DatasetRules, method: Method, *lines: Any) -> list[str]:
    report = validate(io.BytesIO(jsonl(*lines)), rules, method)
    return [str(e) for e in report.errors]


# --- what each backend accepts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "method", "line"),
    [
        (OP, SFT, GOOD_CHAT),
        (OP, SFT, TOOL_CHAT),
        (OP, SFT, {**GOOD_CHAT, "split": "TEST", "metadata": {"source": "tickets"}}),
        (OP, SFT, chat(("developer", "Be kind."), ("user", [{"type": "text", "text": "Hi"}]), ("assistant", "Hey"))),
        (OP, SFT, OP_PREFERENCE),  # a preference entry still trains SFT
        (OP, DPO, OP_PREFERENCE),
        (TG, SFT, GOOD_CHAT),
        (TG, SFT, TOOL_CHAT),
        (TG, SFT, {"prompt": "2+2?", "completion": "4"}),
        (TG, SFT, {"text": "Once upon a time"}),
        (
            TG,
            SFT,
            {"messages": [{"role": "user", "content": "Hi", "weight": 0}, {"role": "assistant", "content": "Yo"}]},
        ),
        (TG, SFT, {**GOOD_CHAT, "anything": "else"}),  # Together ignores keys it does not know
        (TG, DPO, TG_PREFERENCE),
    ],
)
def test_accepted(rules: DatasetRules, method: Method, line: dict[str, Any]) -> None:
    report = validate(io.BytesIO(jsonl(line, line)), rules, method)
    assert report.ok, report.text()
    assert (report.lines, report.valid, report.invalid) == (2, 2, 0)


@pytest.mark.parametrize(
    ("rules", "method", "line", "kind", "reason"),
    [
        (TG, SFT, chat(("user", "Hi"), ("bot", "Hey")), ErrorKind.ROLE,
         'message 2 has role "bot" (expected system, user, assistant or tool)'),
        (OP, SFT, chat(("user", "Hi"), ("bot", "Hey")), ErrorKind.ROLE,
         'message 2 has role "bot" (expected system, user, assistant, developer, tool or function)'),
        (OP, SFT, {"messages": [{"content": "Hi"}]}, ErrorKind.ROLE, "message 1 has no role"),
        (OP, SFT, chat(("user", "Hi")), ErrorKind.ORDER,
         "the last message is from the user, not the assistant (SFT trains on that answer)"),
        (OP, SFT, {"messages": "Hi"}, ErrorKind.MESSAGES, '"messages" is a string, not a list of messages'),
        (OP, SFT, {"messages": []}, ErrorKind.MESSAGES, '"messages" is empty'),
        (OP, SFT, {"messages": [3]}, ErrorKind.MESSAGES, "message 1 is a number, not an object"),
        (OP, SFT, chat(("user", "Hi"), ("assistant", 5)), ErrorKind.CONTENT,
         "message 2 (assistant) has content of type number (expected text)"),
        (OP, SFT, {"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}, ErrorKind.CONTENT,
         "message 1 (user) has no content"),
        (OP, SFT, chat(("user", [{"type": "video"}]), ("assistant", "x")), ErrorKind.CONTENT,
         'message 1 (user): content part 1 is of type "video"'),
        (OP, SFT, {**GOOD_CHAT, "foo": 1}, ErrorKind.UNKNOWN_KEY,
         'has key "foo", which OpenPipe does not take (messages, metadata, rejected_message, response_format, '
         "split, tool_choice, tools)"),
        (OP, SFT, {"messages": [{"role": "user", "content": "Hi", "weight": 1}, {"role": "assistant", "content": "x"}]},
         ErrorKind.UNKNOWN_KEY, 'message 1 (user) has key "weight", which OpenPipe does not take'),
        (OP, SFT, {**GOOD_CHAT, "split": "VALID"}, ErrorKind.SERVICE,
         "does not match OpenPipe's entry format (entry.split: Invalid enum value. Expected 'TRAIN' | 'TEST')"),
        (OP, SFT, {**GOOD_CHAT, "metadata": {"source": 1}}, ErrorKind.SERVICE,
         "does not match OpenPipe's entry format (entry.metadata.source: Expected string, received int)"),
        (OP, SFT, {"text": "Hi"}, ErrorKind.FORMAT,
         'has none of the keys OpenPipe SFT lines have ("messages")'),
        (OP, SFT, {"prompt": "Hi"}, ErrorKind.FORMAT,
         'has none of the keys OpenPipe SFT lines have ("messages")'),
        (OP, DPO, GOOD_CHAT, ErrorKind.FORMAT,
         'has no "rejected_message" (DPO lines have "messages" and "rejected_message")'),
        (OP, DPO, {**GOOD_CHAT, "rejected_message": {"role": "user", "content": "x"}}, ErrorKind.PREFERENCE,
         '"rejected_message" has role "user" (expected assistant)'),
        (OP, DPO, {**GOOD_CHAT, "rejected_message": "No."}, ErrorKind.PREFERENCE,
         '"rejected_message" is a string, not a message object'),
        (OP, DPO, {**chat(("user", "Hi")), "rejected_message": {"role": "assistant", "content": "x"}},
         ErrorKind.ORDER, "the last message is from the user, not the assistant (SFT trains on that answer)"),
        (TG, SFT, chat(("assistant", "Hi"), ("user", "Hey"), ("assistant", "x")), ErrorKind.ORDER,
         "message 1 is from the assistant: a conversation starts with a system or user message"),
        (TG, SFT, chat(("user", "Hi"), ("user", "Hey"), ("assistant", "x")), ErrorKind.ORDER,
         "message 2 (user) follows a user message (user and assistant take turns)"),
        (TG, SFT, chat(("user", "Hi"), ("system", "Hey"), ("assistant", "x")), ErrorKind.ORDER,
         "message 2 (system) follows a user message (user and assistant take turns)"),
        (TG, SFT, {"messages": [*chat(("user", "Hi"), ("assistant", "x"))["messages"],
                                {"role": "tool", "tool_call_id": "c", "content": "42"}]}, ErrorKind.ORDER,
         "message 3 (tool) follows an assistant message that called no tool"),
        (TG, SFT, {"messages": [{"role": "user", "content": "Hi", "weight": 2}, {"role": "assistant", "content": "x"}]},
         ErrorKind.CONTENT, "message 1 has weight 2 (expected 0 or 1)"),
        (TG, SFT, {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"}]},
         ErrorKind.TOOLS, "message 2 (tool) has no tool_call_id (the id of the call it answers)"),
        (TG, SFT, {"messages": [{"role": "user", "content": "Hi", "tool_calls": [CALL]}]}, ErrorKind.TOOLS,
         "message 1 (user) has tool_calls (only the assistant calls tools)"),
        (TG, SFT, {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [{"id": 1}]}]},
         ErrorKind.TOOLS, 'message 2: tool call 1 needs "id", "type": "function" and "function"'),
        (TG, SFT, {**GOOD_CHAT, "tools": [{"type": "function", "function": {}}]}, ErrorKind.TOOLS,
         "tool 1 has no function name"),
        (TG, SFT, {**GOOD_CHAT, "tools": {}}, ErrorKind.TOOLS, '"tools" is an object, not a list'),
        (TG, SFT, {"prompt": "Hi"}, ErrorKind.FORMAT,
         'has no "completion" (SFT lines have "messages", or "prompt" and "completion", or "text")'),
        (TG, SFT, {"prompt": 1, "completion": "x"}, ErrorKind.CONTENT, '"prompt" is a number (expected text)'),
        (TG, SFT, {"text": ["a"]}, ErrorKind.CONTENT, '"text" is an array (expected text)'),
        (TG, SFT, {"text": "a", "messages": []}, ErrorKind.FORMAT,
         'has both "messages" and "text": one format per line'),
        (TG, SFT, TG_PREFERENCE, ErrorKind.FORMAT,
         'has "input", but Together SFT lines have "messages", or "prompt" and "completion", or "text"'),
        (TG, DPO, GOOD_CHAT, ErrorKind.FORMAT,
         'has "messages", but Together DPO lines have "input", "preferred_output" and "non_preferred_output"'),
        (TG, DPO, {**TG_PREFERENCE, "preferred_output": []}, ErrorKind.PREFERENCE,
         '"preferred_output" is 0 messages (expected exactly one assistant message)'),
        (TG, DPO, {**TG_PREFERENCE, "non_preferred_output": [{"role": "user", "content": "x"}]}, ErrorKind.PREFERENCE,
         '"non_preferred_output" has role "user" (expected assistant)'),
        (TG, DPO, {**TG_PREFERENCE, "input": []}, ErrorKind.PREFERENCE,
         '"input" is an array, not an object with "messages"'),
        (TG, DPO, {**TG_PREFERENCE, "input": {"messages": [{"role": "robot", "content": "x"}]}}, ErrorKind.ROLE,
         'message 1 has role "robot" (expected system, user, assistant or tool)'),
    ],
)  # fmt: skip
def test_refused(rules: DatasetRules, method: Method, line: dict[str, Any], kind: ErrorKind, reason: str) -> None:
    report = validate(io.BytesIO(jsonl(GOOD_CHAT if method is SFT else _good(rules), line)), rules, method)
    assert [str(e) for e in report.errors] == [f"line 2: {reason}"]
    assert report.by_kind == {kind: 1}
    assert (report.lines, report.valid, report.invalid, report.ok) == (2, 1, 1, False)


def _good(rules: DatasetRules) -> dict[str, Any]:
    return OP_PREFERENCE if rules is OP else TG_PREFERENCE


@pytest.mark.parametrize(
    ("raw", "kind", "reason"),
    [
        (b"not json", ErrorKind.JSON, "is not valid JSON (Expecting value at column 1)"),
        (b'{"messages": [}', ErrorKind.JSON, "is not valid JSON (Expecting value at column 15)"),
        (b'{"a": NaN}', ErrorKind.JSON, "is not valid JSON (NaN is not a JSON value)"),
        (b"[" * 100_000 + b"]" * 100_000, ErrorKind.JSON, "is nested too deeply to read"),
        (b'{"a": ' + b"9" * 5000 + b"}", ErrorKind.JSON, "is not valid JSON (Exceeds the limit (4300 digits)"),
        (b"[1, 2]", ErrorKind.NOT_OBJECT, "is a JSON array, not an object"),
        (b'"text"', ErrorKind.NOT_OBJECT, "is a JSON string, not an object"),
        (b'{"messages": "\xff\xfe"}', ErrorKind.ENCODING, "is not UTF-8 (byte 0xff at byte 15)"),
        (b"\xc3", ErrorKind.ENCODING, "is not UTF-8 (byte 0xc3 at byte 1)"),
    ],
)
def test_unreadable_lines_are_errors_with_their_number(raw: bytes, kind: ErrorKind, reason: str) -> None:
    report = validate(io.BytesIO(jsonl(GOOD_CHAT, raw, GOOD_CHAT)), OP, SFT)
    assert len(report.errors) == 1
    assert report.errors[0].line == 2 and report.errors[0].kind is kind
    assert str(report.errors[0]).startswith(f"line 2: {reason}")
    assert (report.lines, report.valid, report.invalid) == (3, 2, 1)


def test_the_issue_example(tmp_path: Path) -> None:
    lines = [GOOD_CHAT] * 6173 + [chat(("system", "x"), ("user", "Hi"), ("bot", "Hey"))] + [GOOD_CHAT] * 10
    report = validate_path(write(tmp_path, jsonl(*lines)), TG, SFT)
    assert [str(e) for e in report.errors] == [
        'line 6174: message 3 has role "bot" (expected system, user, assistant or tool)'
    ]
    assert (report.lines, report.valid, report.invalid) == (6184, 6183, 1)


def test_counts_add_up_and_only_the_first_20_errors_are_kept() -> None:
    bad_lines = [3 * i + 2 for i in range(35)]  # every third line from line 2 is bad
    lines: list[Any] = []
    for number in range(1, 3 * 35 + 1):
        lines.append("{oops" if number in bad_lines else GOOD_CHAT)
    lines.insert(10, "   ")  # a blank line (whitespace only) is skipped, not an error
    report = validate(io.BytesIO(jsonl(*lines)), OP, SFT)
    assert report.lines == len(lines) == report.valid + report.invalid + report.blank
    assert (report.invalid, report.blank) == (35, 1)
    assert len(report.errors) == MAX_ERRORS
    numbers = [e.line for e in report.errors]
    expected = [n if n < 11 else n + 1 for n in bad_lines][:MAX_ERRORS]  # the blank line shifts the rest
    assert numbers == expected
    assert report.by_kind == {ErrorKind.JSON: 35}
    text = report.text()
    assert "not valid JSON: 35" in text
    assert "… and 15 more errors (only the first 20 are listed)" in text
    assert text.endswith("not valid")


def test_line_endings_and_a_last_line_without_newline() -> None:
    data = json.dumps(GOOD_CHAT).encode() + b"\r\n\r\n" + json.dumps(GOOD_CHAT).encode()
    report = validate(io.BytesIO(data), OP, SFT)
    assert (report.lines, report.valid, report.blank, report.bytes) == (3, 2, 1, len(data))
    assert report.valid_bytes == len(data) - 2


def test_a_byte_order_mark_is_named() -> None:
    report = validate(io.BytesIO(b"\xef\xbb\xbf" + jsonl(GOOD_CHAT)), OP, SFT)
    assert [str(e) for e in report.errors] == [
        "line 1: starts with a byte order mark (save the file as UTF-8 without BOM)"
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "the file has no lines"),
        (b"\n  \n\n", "the file has no lines"),
    ],
)
def test_file_problems(data: bytes, problem: str) -> None:
    report = validate(io.BytesIO(data), TG, SFT)
    assert report.file_problems == [problem]
    assert not report.ok


def test_line_and_size_limits(tmp_path: Path) -> None:
    rules = dataclasses.replace(TG, min_lines=3, max_lines=4, max_file_bytes=10_000)
    two = validate(io.BytesIO(jsonl(GOOD_CHAT, GOOD_CHAT)), rules, SFT)
    assert two.file_problems == ["2 lines: Together needs 3"]
    five = validate(io.BytesIO(jsonl(*[GOOD_CHAT] * 5)), rules, SFT)
    assert five.file_problems == ["5 lines: Together takes at most 4"]
    assert validate(io.BytesIO(jsonl(*[GOOD_CHAT] * 4)), rules, SFT).ok
    big = write(tmp_path, jsonl(*[GOOD_CHAT] * 200))
    report = validate_path(big, rules, SFT)
    assert report.file_problems == [
        f"the file is {big.stat().st_size / 1024:,.1f} KiB, over the 9.8 KiB Together takes"
    ]
    assert report.lines == 0  # refused before it is read


def test_a_line_over_the_bound_is_skipped_not_held() -> None:
    rules = dataclasses.replace(OP, max_line_bytes=1000)
    huge = b'{"messages": "' + b"x" * 5000 + b'"}'
    report = validate(io.BytesIO(jsonl(GOOD_CHAT, huge, GOOD_CHAT, "oops")), rules, SFT)
    assert [str(e) for e in report.errors] == [
        "line 2: is 5,017 bytes long, over the 1,000 bytes a line may have",
        "line 4: is not valid JSON (Expecting value at column 1)",
    ]
    assert report.by_kind == {ErrorKind.TOO_LONG: 1, ErrorKind.JSON: 1}


def test_a_huge_line_costs_no_more_than_the_bound() -> None:
    # 64 MiB on one line, against the default bound of 8 MiB: memory is the bound, not the line.
    huge = io.BytesIO(b'{"text": "' + b"x" * (64 << 20) + b'"}\n' + jsonl(GOOD_CHAT))
    tracemalloc.start()
    try:
        report = validate(huge, OP, SFT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.by_kind == {ErrorKind.TOO_LONG: 1} and report.valid == 1
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_valid_lines_yields_exactly_the_valid_ones() -> None:
    good = [GOOD_CHAT, TOOL_CHAT, {**GOOD_CHAT, "split": "TRAIN"}]
    data = jsonl(good[0], "oops", good[1], "", chat(("user", "x")), good[2])
    assert [json.loads(line) for line in valid_lines(io.BytesIO(data), OP, SFT)] == good
    checked = list(check_lines(io.BytesIO(data), OP, SFT))
    assert [c.line for c in checked if c.valid] == [1, 3, 6]


def test_a_method_the_backend_takes_no_files_for() -> None:
    rules = dataclasses.replace(TG, formats={SFT: TG.formats[SFT]})
    with pytest.raises(ValueError, match="Together takes no DPO dataset files"):
        validate(io.BytesIO(jsonl(GOOD_CHAT)), rules, DPO)


# --- the rules against their sources -------------------------------------------------------------------------


def test_openpipe_declares_its_rules() -> None:
    assert OPENPIPE.dataset_rules is OPENPIPE_DATASET_RULES
    assert OPENPIPE.capabilities.dataset_upload


def test_openpipe_keys_are_the_specs() -> None:
    spec = json.loads(spec_path().read_text("utf-8"))
    body = spec["paths"]["/datasets/{datasetId}/entries"]["post"]["requestBody"]["content"]["application/json"]
    entries = body["schema"]["properties"]["entries"]
    assert entries["maxItems"] == OP.upload_batch_lines == 100
    entry = entries["items"]
    assert set(entry["properties"]) == ENTRY_KEYS
    by_role = {
        b["properties"]["role"]["enum"][0]: set(b["properties"])
        for b in entry["properties"]["messages"]["items"]["anyOf"]
    }
    assert by_role == MESSAGE_KEYS
    assert set(OP.roles) == set(by_role)


@pytest.mark.parametrize("line", [GOOD_CHAT, TOOL_CHAT, OP_PREFERENCE])
def test_what_openpipe_rules_accept_the_spec_accepts(
    line: dict[str, Any], entry_validator: jsonschema.Draft7Validator
) -> None:
    entry_validator.validate(line)


def test_together_sdk_agrees_on_valid_files(tmp_path: Path) -> None:
    from together.lib.utils.files import check_file

    for method, lines in ((SFT, [GOOD_CHAT, TOOL_CHAT, {"text": "x"}]), (DPO, [TG_PREFERENCE])):
        path = write(tmp_path, jsonl(*lines), f"{method.value}.jsonl")
        assert validate_path(path, TG, method).ok
        assert check_file(path)["is_check_passed"] is True
    broken = write(tmp_path, jsonl(GOOD_CHAT, "[1]"), "broken.jsonl")
    assert not validate_path(broken, TG, SFT).ok
    assert check_file(broken)["is_check_passed"] is False
