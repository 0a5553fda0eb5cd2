"""`slackbot sandbox together` as a real process: it takes the key in TOGETHER_API_KEY, serves /v1 on the port
given, moves jobs on wall-clock steps, and stops cleanly on SIGTERM without printing the key."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from slackbot.backends.base import AuthError, TransportError
from slackbot.backends.together.client import TogetherClient
from slackbot.backends.together.wire import CreateFineTuneRequest, LoraTrainingType
from slackbot.sandbox.together_api import SUPPORTED_MODELS
from slackbot.sandbox.waiting import wait_until
from tests.cli_helpers import assert_clean, bot_env, free_port

KEY = "tgp_cli_sandbox_SECRET_0123"


def test_sandbox_together_serves_the_key_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = bot_env(tmp_path, TOGETHER_API_KEY=KEY, LOG_LEVEL="INFO")
    args = [sys.executable, "-m", "slackbot", "sandbox", "together", "--port", str(port), "--step-seconds", "0.2"]
    process = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = TogetherClient(SecretStr(KEY), f"http://127.0.0.1:{port}", timeout=2.0, max_attempts=1)
    try:
        models = wait_until(lambda: client.supported_models(), timeout=20, ignoring=(TransportError,))
        assert SUPPORTED_MODELS[0] in models.models
        training_file = client.list_files().fine_tune_files()[0].id
        lora = LoraTrainingType(lora_r=8, lora_alpha=16)
        job = client.create_job(
            CreateFineTuneRequest(training_file=training_file, model=models.models[0], training_type=lora)
        )
        wait_until(lambda: client.get_job(job.id).status == "completed", timeout=20, interval=0.1)
        wrong = TogetherClient(SecretStr("tgp_other"), f"http://127.0.0.1:{port}", max_attempts=1)
        try:
            wrong.list_jobs()
        except AuthError:
            pass
        else:
            raise AssertionError("a wrong key was accepted")
        finally:
            wrong.close()
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in err  # says what to use as TOGETHER_BASE_URL
    assert_clean(out + err, KEY)
