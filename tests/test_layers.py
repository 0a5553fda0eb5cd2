"""The layer contracts (pyproject.toml, `[tool.importlinter]`) hold, and an import pointing the wrong way breaks them.

Each case copies `slackbot/` to a temporary folder, adds one bad import and runs `lint-imports` on the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, not the installed package, is analysed
    only = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", *only, "pyproject.toml"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "slackbot", tmp_path / "slackbot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(tree: Path, module: str, line: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = tree / module.replace(".", "/") / "__init__.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    done = lint(copy_of_the_code(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        # a lower layer reaching up: the store calling into the listeners
        ("slackbot.jobs.store", "import slackbot.listeners", "layers"),
        ("slackbot.services.status", "import slackbot.runtime", "layers"),
        # a builder doing I/O
        ("slackbot.blocks.help", "import slackbot.jobs.store", "no-io"),
        ("slackbot.forms.metadata", "import httpx", "no-io"),
        # a backend knowing Slack
        ("slackbot.backends.openpipe.client", "import slack_sdk", "backends-apart"),
        # the core naming a backend
        ("slackbot.jobs.tracker", "import slackbot.backends.openpipe.wire", "no-backend-in-core"),
        # the domain, once it exists, importing something of ours
        ("slackbot.domain", "import slackbot.text", "domain-leaf"),
        # a cycle between two leaves
        ("slackbot.text", "import slackbot.logs", "acyclic"),
        # the store reaching up into Slack delivery, which sits above it
        ("slackbot.jobs.store", "import slackbot.delivery.notifier", "layers"),
        ("slackbot.jobs.outbox", "import slackbot.delivery", "acyclic"),
        # delivery and the use cases are independent of each other, and delivery is below the wiring
        ("slackbot.services.status", "import slackbot.delivery.notifier", "layers"),
        ("slackbot.delivery.notifier", "import slackbot.runtime", "layers"),
        # a builder posting to Slack, a backend or the domain knowing delivery, delivery naming a backend
        ("slackbot.blocks.card", "import slackbot.delivery.slack_post", "no-io"),
        ("slackbot.backends.openpipe.client", "import slackbot.delivery.pacing", "backends-apart"),
        ("slackbot.domain.events", "import slackbot.delivery", "domain-leaf"),
        ("slackbot.delivery.notifier", "import slackbot.backends.openpipe.wire", "no-backend-in-core"),
    ],
)
def test_an_import_pointing_the_wrong_way_breaks_its_contract(
    tmp_path: Path, module: str, bad_import: str, contract: str
) -> None:
    tree = copy_of_the_code(tmp_path)
    add_import(tree, module, bad_import)
    done = lint(tree, contract)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 kept, 1 broken" in done.stdout, done.stdout


def test_delivery_may_read_the_store_and_build_blocks(tmp_path: Path) -> None:
    """Delivery sits above jobs/ and beside the builders: it may reach the outbox, the store and the blocks."""
    tree = copy_of_the_code(tmp_path)
    add_import(
        tree, "slackbot.delivery.pacing", "import slackbot.jobs.outbox, slackbot.jobs.store, slackbot.blocks.card"
    )
    add_import(tree, "slackbot.delivery.slack_post", "import slackbot.domain.events, slackbot.jobs.records")
    done = lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout
