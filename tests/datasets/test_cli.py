"""`slackbot validate`: the report on stdout, exit 0 valid / 1 errors / 2 usage, one line and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slackbot.cli import main
from tests.datasets.conftest import GOOD_CHAT, chat, jsonl, write

PREFERENCE = {**GOOD_CHAT, "rejected_message": {"role": "assistant", "content": "No."}}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_valid_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, jsonl(GOOD_CHAT, GOOD_CHAT))
    code, out, err = _run(["validate", str(path), "--backend", "openpipe"], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == ["2 lines checked for OpenPipe (SFT): 2 valid, 0 with errors", "valid"]


def test_errors_exit_1_with_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, jsonl(GOOD_CHAT, chat(("user", "Hi"), ("bot", "x")), "{", GOOD_CHAT))
    code, out, err = _run(["validate", str(path), "--backend", "openpipe"], capsys)
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "4 lines checked for OpenPipe (SFT): 2 valid, 2 with errors",
        "  unknown role: 1",
        "  not valid JSON: 1",
        'line 2: message 2 has role "bot" (expected system, user, assistant, developer, tool or function)',
        "line 3: is not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        "not valid",
    ]


def test_method_dpo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, jsonl(PREFERENCE, GOOD_CHAT))
    code, out, _ = _run(["validate", str(path), "--backend", "openpipe", "--method", "dpo"], capsys)
    assert code == 1
    assert 'line 2: has no "rejected_message"' in out
    assert _run(["validate", str(path), "--backend", "openpipe", "--method", "sft"], capsys)[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--backend", "nope"],
            "slackbot validate: no backend 'nope' checks dataset files (backends that do: openpipe, together)",
        ),
        (["--backend", "openpipe", "--missing"], None),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str | None
) -> None:
    path = write(tmp_path, jsonl(GOOD_CHAT))
    if message is None:
        with pytest.raises(SystemExit) as exited:  # argparse's own usage error
            main(["validate", str(path), *args])
        assert exited.value.code == 2
        assert "unrecognized arguments: --missing" in capsys.readouterr().err
        return
    code, out, err = _run(["validate", str(path), *args], capsys)
    assert (code, out, err.strip()) == (2, "", message)


def test_missing_file_and_directory_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["validate", str(tmp_path / "nope.jsonl"), "--backend", "openpipe"], capsys)
    assert (code, out, err.strip()) == (2, "", f"slackbot validate: {tmp_path / 'nope.jsonl'}: no such file")
    code, _, err = _run(["validate", str(tmp_path), "--backend", "openpipe"], capsys)
    assert (code, err.strip()) == (2, f"slackbot validate: {tmp_path}: is a directory")


def test_installed_command_never_shows_a_traceback(tmp_path: Path) -> None:
    broken = write(tmp_path, b"\xff\xfe\x00garbage\n" + b"[" * 200_000 + b"\n")
    for args, code in (([str(broken), "--backend", "openpipe"], 1), ([str(broken)], 2)):
        done = subprocess.run(
            [sys.executable, "-m", "slackbot", "validate", *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == code, done.stderr
        assert "Traceback" not in done.stdout + done.stderr


def test_together_files_are_checked_by_together_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Together takes prompt/completion lines that OpenPipe does not: each backend's own rules decide.
    path = tmp_path / "pc.jsonl"
    path.write_text('{"prompt": "2+2?", "completion": "4"}\n', "utf-8")
    assert _run(["validate", str(path), "--backend", "together"], capsys)[0] == 0
    assert _run(["validate", str(path), "--backend", "openpipe"], capsys)[0] == 1
