"""The validator fuzzed: random JSON lines, random bytes, broken UTF-8, lines over the bound. It never raises,
every error carries a line number that exists, the counts add up, and what it accepts for OpenPipe the spec
accepts."""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slackbot.backends.base import Method
from slackbot.backends.datasets import DatasetRules
from slackbot.backends.openpipe.datasets import OPENPIPE_DATASET_RULES
from slackbot.backends.together.datasets import TOGETHER_DATASET_RULES
from slackbot.datasets.validate import MAX_ERRORS, Report, check_entry, validate

RULES = [OPENPIPE_DATASET_RULES, TOGETHER_DATASET_RULES]
SMALL_LINES = [dataclasses.replace(r, max_line_bytes=200) for r in RULES]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
roles = st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "bot", ""])
contents = st.one_of(
    st.text(max_size=20),
    st.none(),
    st.integers(),
    st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "video"]), "text": st.text(max_size=5)}),
        max_size=2,
    ),
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles, "content": contents},
        optional={
            "tool_call_id": st.text(max_size=5),
            "name": st.text(max_size=5),
            "weight": st.sampled_from([0, 1, 2]),
            "tool_calls": st.just([{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]),
        },
    ),
    max_size=5,
)
chat_like = st.fixed_dictionaries(
    {"messages": messages},
    optional={
        "split": st.sampled_from(["TRAIN", "TEST", "VALID"]),
        "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=2),
        "rejected_message": st.fixed_dictionaries({"role": roles, "content": contents}),
        "tools": st.just([{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        "text": st.text(max_size=5),
        "other": json_values,
    },
)
# Mostly well-formed chat entries, so that the validator accepts many and the spec oracle has work to do.
plain_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant", "developer"]),
        "content": st.one_of(
            st.text(max_size=10), st.just([{"type": "text", "text": "hi"}]), st.just([{"type": "refusal"}])
        ),
    },
    optional={"name": st.text(max_size=5), "refusal": st.none() | st.text(max_size=3)},
)
plausible = st.fixed_dictionaries(
    {"messages": st.lists(plain_message, max_size=4).map(lambda ms: [*ms, {"role": "assistant", "content": "answer"}])},
    optional={
        "split": st.sampled_from(["TRAIN", "TEST"]),
        "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=2),
        "rejected_message": st.fixed_dictionaries(
            {"role": st.just("assistant"), "content": st.text(max_size=5) | st.none()},
            optional={"tool_calls": st.none(), "refusal": st.integers() | st.text(max_size=2)},
        ),
        "tool_choice": st.sampled_from(["none", "auto", "required", "sometimes"]),
        "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}, {"type": "yaml"}]),
    },
)
encoded_json = st.one_of(json_values, chat_like).map(lambda v: json.dumps(v).encode())
raw_lines = st.one_of(
    encoded_json,
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    encoded_json.map(lambda b: b[: len(b) // 2]),  # cut short
    encoded_json.map(lambda b: b + b"\xff"),  # broken UTF-8
    st.integers(min_value=150, max_value=1000).map(lambda n: b'{"text": "' + b"x" * n + b'"}'),  # over 200 bytes
    st.just(b""),
    st.just(b"\r"),
)


def _assert_sound(report: Report, data: bytes) -> None:
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert report.lines == physical
    assert report.valid + report.invalid + report.blank == report.lines
    assert report.bytes == len(data)
    assert len(report.errors) == min(report.invalid, MAX_ERRORS)
    numbers = [e.line for e in report.errors]
    assert numbers == sorted(set(numbers))
    assert all(1 <= n <= report.lines for n in numbers)
    assert all(str(e).startswith(f"line {e.line}: ") and e.reason for e in report.errors)
    assert sum(report.by_kind.values()) == report.invalid


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(raw_lines, max_size=30), which=st.integers(0, 1), dpo=st.booleans(), crlf=st.booleans())
def test_never_crashes_and_counts_add_up(lines: list[bytes], which: int, dpo: bool, crlf: bool) -> None:
    data = (b"\r\n" if crlf else b"\n").join(lines)
    report = validate(io.BytesIO(data), SMALL_LINES[which], Method.DPO if dpo else Method.SFT)
    _assert_sound(report, data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    for rules in SMALL_LINES:
        _assert_sound(validate(io.BytesIO(data), rules, Method.SFT), data)


@settings(max_examples=400, deadline=None)
@given(entry=st.one_of(chat_like, plausible), dpo=st.booleans())
def test_what_openpipe_rules_accept_its_spec_accepts(
    entry: dict[str, Any], dpo: bool, entry_validator: jsonschema.Draft7Validator
) -> None:
    rules: DatasetRules = OPENPIPE_DATASET_RULES
    if check_entry(entry, rules, Method.DPO if dpo else Method.SFT) is None:
        entry_validator.validate(entry)
