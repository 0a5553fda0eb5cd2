"""Replica processes for the multi-process tests (tests/jobs/test_replicas.py, tests/feed/test_replicas.py).

The test starts its workers with `start` and stops them with `stop`; a worker (`python -m <module> '<json>'`)
runs its tick with `serve`, which prints "ready" once it runs and a JSON summary of what the ticks counted when
it is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from slackbot.jobs.scheduler import JobScheduler, guarded

REPO = Path(__file__).resolve().parents[1]

R = TypeVar("R")


def start(module: str, workers: Sequence[Mapping[str, Any]]) -> list[subprocess.Popen[str]]:
    """One process of `module` per item of `workers` (its arguments), each started and said ready."""
    procs = []
    for args in workers:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", module, json.dumps(args)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", "replica did not start"
    return procs


def stop(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """SIGTERM every replica; each must exit cleanly. Their summaries, in order."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    summaries = []
    for proc in procs:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    return summaries


def serve(name: str, tick: Callable[[], R], counts: Mapping[str, Callable[[R], int]]) -> None:
    """In a worker: print "ready", run `tick` every 0.05 s on a JobScheduler until SIGTERM (at most 120 s), wait for
    the tick in progress, then print how many ticks ran and the total of each count over their reports."""
    totals = dict.fromkeys(["ticks", *counts], 0)
    lock = threading.Lock()

    def poll() -> None:
        report = tick()
        with lock:
            totals["ticks"] += 1
            for key, count in counts.items():
                totals[key] += count(report)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler = JobScheduler(guarded((name, poll)), 0.05)
    scheduler.start()
    print("ready", flush=True)
    stop.wait(120)
    scheduler.shutdown(wait=True)
    print(json.dumps(totals), flush=True)
