"""`python -m benchmarks [--quick] [--only ack|polling|notify|edge|charts]`: print the tables, write
results/latest.md."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import ack, charts, edge, notify, polling
from benchmarks.common import Section

BENCHMARKS: dict[str, Callable[[bool], Section | list[Section]]] = {
    "ack": ack.run,
    "polling": polling.run,
    "notify": notify.run,
    "edge": edge.run,
    "charts": charts.run,
}
RESULTS = Path(__file__).parent / "results" / "latest.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the largest scales and shorten the runs")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only these (repeatable)")
    args = parser.parse_args(argv)
    # The stand-ins and the bot log faults and retries they are made to go through; the tables say what matters.
    logging.disable(logging.WARNING)
    chosen = args.only or list(BENCHMARKS)
    started = datetime.now(UTC)
    parts = [
        "# slackbot benchmarks",
        "",
        f"`python -m benchmarks{' --quick' if args.quick else ''}"
        f"{''.join(f' --only {name}' for name in args.only or [])}` — {started:%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs",
        "",
    ]
    for name in chosen:
        print(f"running {name}…", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result = BENCHMARKS[name](args.quick)
        sections = result if isinstance(result, list) else [result]
        parts += [s.markdown() for s in sections]
        print(f"{name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    text = "\n".join(parts)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    print(f"(written to {RESULTS})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
