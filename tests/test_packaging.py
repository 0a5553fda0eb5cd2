"""What ships: a production install (`pip install .`, no extras) imports every module under `slackbot/`.

The dev-only packages are derived from pyproject.toml (everything the `dev` extra brings in that the main
dependencies do not), made unimportable in a fresh interpreter, and every module is imported there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: blocks the given top-level names, then imports every module of the package given,
# printing one JSON line per module that could not import something. Scripts that act when imported
# (`__main__`, Alembic's env.py) raise other errors here; only an ImportError means a missing package.
IMPORT_ALL = """
import importlib, importlib.abc, json, pkgutil, sys, traceback

blocked = set(json.loads(sys.argv[1]))
package = sys.argv[2]


class DevOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is a dev-only package")
        return None


sys.meta_path.insert(0, DevOnly())
root = importlib.import_module(package)
names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        print(json.dumps({"module": name, "error": f"{type(exc).__name__}: {exc}"}))
    except BaseException:
        pass
print(json.dumps({"imported": len(names)}))
"""


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: set[str]) -> set[str]:
    """The installed distributions `names` need, themselves included (extras of dependencies ignored)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend(_dist_name(r) for r in requires if "extra ==" not in r)
    return seen


def dev_only_modules() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = _closure({_dist_name(r) for r in project["dependencies"]})
    dev = _closure({_dist_name(r) for r in project["optional-dependencies"]["dev"]}) - main
    by_module = metadata.packages_distributions()
    return {
        module
        for module, dists in by_module.items()
        if {d.lower().replace("_", "-") for d in dists} <= dev and not module.startswith("_")
    }


def import_all(package: str, blocked: set[str]) -> tuple[list[dict[str, str]], int]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, json.dumps(sorted(blocked)), package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failures = [line for line in lines if "module" in line]
    return failures, int(lines[-1]["imported"])


def test_the_dev_extra_is_what_is_blocked() -> None:
    blocked = dev_only_modules()
    # The packages the tests need and production must not: if these are not blocked, the test below proves nothing.
    assert {"pytest", "websockets", "hypothesis", "jsonschema", "openpipe", "yaml", "xdist", "mypy"} <= blocked
    # ...and nothing production needs is blocked.
    assert not blocked & {"slack_bolt", "slack_sdk", "httpx", "pydantic", "sqlalchemy", "alembic", "waitress"}


def test_every_shipped_module_imports_without_the_dev_extra() -> None:
    failures, imported = import_all("slackbot", dev_only_modules())
    assert failures == [], "modules that need a dev-only package: " + ", ".join(f["module"] for f in failures)
    assert imported > 50  # walked the whole package, not just its __init__


def test_a_module_needing_a_dev_package_is_named() -> None:
    # The Socket Mode stand-in needs websockets: under the same blocker it must be reported by name.
    failures, _ = import_all("tests.stand_ins", dev_only_modules())
    assert [f["module"] for f in failures] == ["tests.stand_ins.slack_socket"]
    assert "websockets" in failures[0]["error"]
