"""Messages about a dataset file in its thread: the check's report (with "Upload only the valid lines" when some
lines are bad), the upload's progress, and its outcome. Pure builders: block dicts, no I/O.

The errors quote the file (a role it used, a key it had), so every reason goes through `text.mrkdwn`.
"""

from __future__ import annotations

from typing import Any, Final

from slackbot import ids
from slackbot.backends.base import Dataset
from slackbot.datasets.validate import MAX_ERRORS, Report
from slackbot.text import clip, code, mrkdwn

SECTION_MAX: Final = 3000
BUTTON_TEXT: Final = "Upload only the valid lines"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}}


def report_blocks(name: str, report: Report, *, upload_key: str | None = None) -> list[dict[str, Any]]:
    """The check's report; with `upload_key`, a button to upload only the valid lines."""
    mark = "✅" if report.ok else "⚠"
    head = f"{mark} {code(name)}: {mrkdwn(report.headline())}"
    blocks = [_section(head)]
    counts = [f"{mrkdwn(line)}" for line in report.kind_counts()]
    counts += [f"file: {mrkdwn(problem)}" for problem in report.file_problems]
    if counts:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(" · ".join(counts), 3000)}]})
    if report.errors:
        budget = max(100, (SECTION_MAX - 200) // len(report.errors))
        lines = [f"• {mrkdwn(str(error), budget, one_line=True)}" for error in report.errors]
        if report.invalid > len(report.errors):
            lines.append(f"… and {report.invalid - len(report.errors):,} more (the first {MAX_ERRORS} are listed)")
        blocks.append(_section("\n".join(lines)))
    if report.ok:
        blocks.append(_section("Every line is valid: uploading it now."))
    elif upload_key is not None:
        blocks.append(
            _section(
                f"Nothing was uploaded. Fix the file and share it again, or upload only the {report.valid:,} valid "
                f"lines (the {report.invalid:,} with errors are left out)."
            )
        )
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.ACTION_UPLOAD_VALID_ONLY,
                        "text": {"type": "plain_text", "text": f"{BUTTON_TEXT} ({report.valid:,})"[:75]},
                        "value": upload_key,
                    }
                ],
            }
        )
    else:
        blocks.append(_section("Nothing was uploaded: no line of this file can be used. Fix it and share it again."))
    return blocks


def progress_blocks(name: str, percent: int) -> list[dict[str, Any]]:
    percent = max(0, min(100, percent))
    bar = "█" * (percent // 10) + "░" * (10 - percent // 10)
    return [_section(f"Uploading {code(name)}: {bar} {percent}%")]


def done_blocks(name: str, dataset: Dataset, service: str) -> list[dict[str, Any]]:
    entries = f"{dataset.entry_count:,} entr{'y' if dataset.entry_count == 1 else 'ies'}"
    return [_section(f"✅ {code(name)} is uploaded to {mrkdwn(service)}: dataset {code(dataset.name)} ({entries}).")]


def failed_blocks(name: str, message: str) -> list[dict[str, Any]]:
    return [_section(f"⚠ The upload of {code(name)} failed: {mrkdwn(message, 1500)}")]
