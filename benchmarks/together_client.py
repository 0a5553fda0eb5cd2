"""Why the Together client is httpx and not the `together` SDK: import time and time per job-list read.

`python -m benchmarks.together_client` (under a minute). Both clients read the same local Together (same jobs,
same server time), so the difference is the client's own work. Not part of `make bench` yet.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from pydantic import SecretStr
from together import Together

from slackbot.backends.together.client import TogetherClient
from slackbot.backends.together.wire import CreateFineTuneRequest, LoraTrainingType
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import SUPPORTED_MODELS, LocalTogether

JOBS = 50
READS = 200


def import_seconds(module: str, runs: int = 5) -> float:
    """Median time to import `module` in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(times)


def median_ms(call: Callable[[], object]) -> float:
    call()
    times = []
    for _ in range(READS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    print(f"import together: {import_seconds('together'):.3f} s")
    print(f"import slackbot.backends.together.client: {import_seconds('slackbot.backends.together.client'):.3f} s")
    with LocalTogether("tgp_bench", clock=ManualClock()) as api:
        ours = TogetherClient(SecretStr("tgp_bench"), api.url)
        training_file = ours.list_files().fine_tune_files()[0].id
        lora = LoraTrainingType(lora_r=8, lora_alpha=16)
        for _ in range(JOBS):
            ours.create_job(
                CreateFineTuneRequest(training_file=training_file, model=SUPPORTED_MODELS[0], training_type=lora)
            )
        sdk = Together(api_key="tgp_bench", base_url=api.url)
        print(f"httpx client list_jobs ({JOBS} jobs): median {median_ms(ours.list_jobs):.2f} ms")
        print(f"SDK fine_tuning.list ({JOBS} jobs): median {median_ms(sdk.fine_tuning.list):.2f} ms")
        sdk.close()
        ours.close()


if __name__ == "__main__":
    main()
