"""`python -m benchmarks.datasets [--mb N]`: what checking and uploading a large dataset file costs the bot.

Each case runs in its own process (peak RSS from `getrusage`, over a process that only imports), on a file
of N MB (default 100) of chat lines about 1 KB each, written once to a temporary directory:

- `baseline`: a process that imports the validator and the OpenPipe backend and does nothing;
- `naive`: the file read whole, split into lines and each parsed (what streaming avoids);
- `validate`: `validate_path` with OpenPipe's rules (every line read, parsed and checked, spec included);
- `validate + upload`: the report, then the valid lines sent to a local OpenPipe (in the parent process, so its
  copy of the entries is not counted) in batches of 100;
- `one huge line`: the same number of bytes on a single line (refused at the 8 MiB bound, never held);
- `from Slack`: the bot's whole path: `files.info`, the download with the bot token to a temporary file, the
  check, the report and the upload with its progress in the thread (local Slack and OpenPipe in the parent).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Section

KEY = "opk_bench_datasets_0000"
SLACK_TOKEN = "xoxb-bench-datasets"  # the local Slack's
WORDS = ("the", "a", "model", "answer", "question", "ticket", "refund", "order", "shipping", "please", "help")


def write_file(path: Path, megabytes: int, seed: int = 0) -> int:
    """Chat lines of about 1 KB until the file reaches `megabytes`; the number of lines."""
    rng = random.Random(seed)
    target = megabytes * 1_000_000
    lines = 0
    with path.open("wb") as out:
        size = 0
        while size < target:
            entry = {
                "messages": [
                    {"role": "system", "content": "You answer support tickets."},
                    {"role": "user", "content": " ".join(rng.choices(WORDS, k=70))},
                    {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=80))},
                ],
                "split": "TRAIN",
            }
            data = json.dumps(entry).encode() + b"\n"
            out.write(data)
            size += len(data)
            lines += 1
    return lines


def write_huge_line(path: Path, megabytes: int) -> None:
    with path.open("wb") as out:
        out.write(b'{"messages": [{"role": "user", "content": "')
        chunk = b"x" * 1_000_000
        for _ in range(megabytes):
            out.write(chunk)
        out.write(b'"}]}\n')


# --- the measured child ---------------------------------------------------------------------------------------


def child(case: str, path: str, url: str) -> dict[str, Any]:
    from slackbot.backends.openpipe.backend import OpenPipeBackend
    from slackbot.backends.openpipe.datasets import OPENPIPE_DATASET_RULES as rules
    from slackbot.datasets.validate import valid_lines, validate_path

    started = time.perf_counter()
    out: dict[str, Any] = {}
    if case == "naive":
        text = Path(path).read_bytes()
        out["lines"] = sum(1 for line in text.splitlines() if json.loads(line) is not None)
    elif case in ("validate", "huge"):
        report = validate_path(path, rules)
        out.update(lines=report.lines, valid=report.valid, errors=[str(e) for e in report.errors[:1]])
    elif case == "upload":
        from pydantic import SecretStr

        report = validate_path(path, rules)
        backend = OpenPipeBackend(SecretStr(KEY), url, timeout=60.0)
        with Path(path).open("rb") as stream:
            dataset = backend.upload_dataset(
                "bench", valid_lines(stream, rules), total_bytes=report.valid_bytes, progress=None
            )
        backend.close()
        out.update(lines=report.lines, uploaded=dataset.entry_count)
    elif case == "slack":
        from pydantic import SecretStr
        from slack_sdk import WebClient

        from slackbot.services.datasets import DatasetUploads, Where

        slack_url, file_id = url.split("#", 1)
        backend = OpenPipeBackend(SecretStr(KEY), os.environ["BENCH_OPENPIPE_URL"], timeout=60.0)
        uploads = DatasetUploads(
            slack=WebClient(token=SLACK_TOKEN, base_url=slack_url),
            bot_token=SLACK_TOKEN,
            backends={"openpipe": backend},
            rules_for=lambda _: rules,
        )
        checked = uploads.check_file(file_id, "openpipe", Where("C0GENERAL", None, "U0ALICE"))
        out.update(lines=checked.lines if checked else 0)
    out["seconds"] = time.perf_counter() - started
    out["rss_peak"] = _peak_rss()
    return out


def _peak_rss() -> int:
    """This process's peak resident memory. VmHWM, not getrusage: on Linux `ru_maxrss` survives execve, so a
    child would report its parent's peak when that was higher."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _measure(case: str, path: Path, url: str = "", openpipe_url: str = "") -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.datasets", "--child", case, str(path), url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0", "BENCH_OPENPIPE_URL": openpipe_url},
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def run(megabytes: int = 100) -> Section:
    from slackbot.sandbox.openpipe_api import LocalOpenPipe
    from slackbot.sandbox.slack_api import LocalSlack
    from slackbot.sandbox.slack_downloads import SlackFiles

    section = Section(
        f"A {megabytes} MB dataset file: check and upload",
        ["case", "lines", "time", "lines/s", "peak RSS", "RSS over baseline"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        huge = Path(tmp) / "huge.jsonl"
        lines = write_file(path, megabytes)
        write_huge_line(huge, megabytes)
        results = {
            "baseline": _measure("baseline", path),
            "naive": _measure("naive", path),
            "validate": _measure("validate", path),
            "one huge line": _measure("huge", huge),
        }
        with LocalOpenPipe(KEY, seed=False) as api:
            results["validate + upload"] = _measure("upload", path, api.url)
            posts = sum(1 for r in api.requests if r.path.endswith("/entries"))
        with (
            LocalOpenPipe(KEY, seed=False) as api,
            LocalSlack(bot_token=SLACK_TOKEN, post_rate_per_channel=None) as slack,
            SlackFiles(slack) as files,
        ):
            shared = files.add("big.jsonl", path.read_bytes())
            results["from Slack: download, check, upload"] = _measure(
                "slack", path, f"{slack.url}#{shared['id']}", api.url
            )
    base = results["baseline"]["rss_peak"]
    for name, r in results.items():
        seconds = r["seconds"]
        count = r.get("lines", 0)
        section.rows.append(
            [
                name,
                f"{count:,}" if count else "—",
                f"{seconds:.1f} s" if name != "baseline" else "—",
                f"{count / seconds:,.0f}" if count and seconds > 0 else "—",
                _mib(r["rss_peak"]),
                _mib(r["rss_peak"] - base) if name != "baseline" else "—",
            ]
        )
    size = path.stat().st_size if path.exists() else megabytes * 1_000_000
    section.notes.append(
        f"naive: the file read whole and each line parsed, no checks; {lines:,} chat lines, {size / 1e6:,.0f} MB; "
        f"the upload sent {results['validate + upload'].get('uploaded', 0):,} entries in {posts:,} requests; "
        f"the huge line: {results['one huge line'].get('errors')}"
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.datasets", description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="size of the file in MB (default 100)")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "PATH", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, path, url = args.child
        print(json.dumps(child(case, path, url)))
        return 0
    print(run(args.mb).markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
