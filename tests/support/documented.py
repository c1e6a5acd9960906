"""The commands that README.md, CONTRIBUTING.md and docs/ show, who runs each one, and how a test runs one.

Every command in a fenced ``bash``, ``sh``, ``shell``, ``zsh`` or ``console`` block of README.md,
CONTRIBUTING.md or docs/**/*.md is registered here, in :data:`RUN_BY` (the test, ``make demo`` or CI that runs
it, verbatim) or in :data:`NOT_RUN` (with the reason; the block must say so).
``tests/unit/test_documented_commands.py`` checks the registry against the docs both ways; the tests named here
run the commands with :func:`shell`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO
from tests.support.project import clean_env

#: The pages whose commands are registered.
DOC_FILES = ("README.md", "CONTRIBUTING.md", "docs/**/*.md")
#: Fenced blocks of these languages hold commands; every other block (yaml, text, json, dotenv...) holds none.
COMMAND_LANGUAGES = frozenset({"bash", "sh", "shell", "zsh", "console"})
#: A blockquote right before a command block that says its commands are not run, and why.
NOT_RUN_MARKER = "Not run by the tests:"

#: Runners that are not a test: the Makefile's ``demo`` recipe, and CI's script.
MAKE_DEMO = "make demo"
CI = ".ci/run"
#: A command that runs a selection of the test suite (a tier: ``.venv/bin/pytest tests/unit``): ``make test``
#: runs the whole suite in its recipe's ``.venv/bin/pytest``, and a test cannot run its own tier.
MAKE_TEST = "make test"
#: ``make check`` and the lines of its recipe: the Makefile's ``test`` target, which CI runs, depends on it.
MAKE_CHECK = "make check"

_UNIT = "tests/unit/test_documented_cli.py"
_TOUR = "tests/integration/test_cli_run.py::test_run_one_city_then_read_the_fleets_status"
_SERVE = "tests/unit/cli/test_serve_command.py::test_the_documented_server_answers_curl_and_the_kill_switch"
_TESTING = "tests/unit/test_documented_testing.py::test_one_file_one_test_and_a_collection_run_as_shown"

#: Each command the docs show, exactly as shown, and what runs it: a test's node id, ``make demo``, ``.ci/run``,
#: ``make test`` or ``make check``.
RUN_BY: dict[str, str] = {
    "make demo": MAKE_DEMO,
    "make test": CI,
    ".venv/bin/airflow-ml lint dag_templates --expectations expectations": MAKE_DEMO,
    ".venv/bin/airflow-ml demo": MAKE_DEMO,
    ".venv/bin/airflow-ml --help": f"{_UNIT}::test_help_and_version",
    ".venv/bin/airflow-ml --version": f"{_UNIT}::test_help_and_version",
    ".venv/bin/airflow-ml new-city ride_duration porto --display-name Porto": (
        f"{_UNIT}::test_the_readmes_city_and_suite_lint_clean"
    ),
    ".venv/bin/airflow-ml lint": f"{_UNIT}::test_the_readmes_city_and_suite_lint_clean",
    ".venv/bin/airflow-ml lint --format json": f"{_UNIT}::test_lint_names_a_broken_city_file_in_each_format",
    ".venv/bin/airflow-ml lint --format github": f"{_UNIT}::test_lint_names_a_broken_city_file_in_each_format",
    ".venv/bin/airflow-ml schema city": f"{_UNIT}::test_schema_and_env",
    ".venv/bin/airflow-ml schema template": f"{_UNIT}::test_schema_and_env",
    ".venv/bin/airflow-ml env": f"{_UNIT}::test_schema_and_env",
    ".venv/bin/airflow-ml suite infer var/demo/data/raw/trips/berlin -o expectations/my_suite.json": (
        f"{_UNIT}::test_suite_infer_on_the_demos_data"
    ),
    (
        ".venv/bin/airflow-ml suite infer --template ride_duration --data-root var/demo/data "
        "-o expectations/new_trips.json"
    ): f"{_UNIT}::test_suite_infer_on_the_demos_data",
    """.venv/bin/airflow-ml run ride_duration.berlin --conf '{"num_boost_rounds": 60}'""": (
        f"{_UNIT}::test_run_refuses_a_mistyped_conf_before_any_run"
    ),
    ".venv/bin/airflow-ml demo-data --root var/data --cities berlin": _TOUR,
    (
        """.venv/bin/airflow-ml run ride_duration.berlin --conf '{"num_boost_round": 60}' """
        "--window-start 2026-01-05 --window-end 2026-02-18"
    ): _TOUR,
    ".venv/bin/airflow-ml status --template ride_duration": _TOUR,
    'eval "$(.venv/bin/airflow-ml env)"': _TOUR,
    ".venv/bin/airflow-ml serving berlin": _TOUR,
    ".venv/bin/airflow-ml serving berlin --json": _TOUR,
    ".venv/bin/airflow-ml serve --port 8000": _SERVE,
    (
        "curl -s -X POST http://127.0.0.1:8000/v1/models/ride_duration/berlin:predict -H 'Content-Type: "
        """application/json' -d '{"rows": [{"distance_km": 3.9, "pickup_hour": 4, "weekday": 0, "pickup_zone": """
        """"mitte", "temperature_c": -2.8, "is_raining": 0}]}'"""
    ): _SERVE,
    '.venv/bin/airflow-ml disable berlin --reason "its data feed is broken"': _SERVE,
    ".venv/bin/airflow-ml enable berlin": _SERVE,
    ".venv/bin/airflow-ml snapshots prune --dry-run": _TOUR,
    ".venv/bin/airflow-ml snapshots prune": _TOUR,
    "make check": MAKE_CHECK,
    ".venv/bin/ruff check .": MAKE_CHECK,
    ".venv/bin/ruff format --check .": MAKE_CHECK,
    ".venv/bin/mypy": MAKE_CHECK,
    ".venv/bin/lint-imports": MAKE_CHECK,
    ".venv/bin/pytest tests/unit": MAKE_TEST,
    '.venv/bin/pytest tests/integration -m "not services"': MAKE_TEST,
    ".venv/bin/pytest tests/services tests/faults": MAKE_TEST,
    "AIRFLOW_ML_REQUIRE_SERVICES=1 .venv/bin/pytest tests/services tests/faults": MAKE_TEST,
    ".venv/bin/pytest --collect-only -q tests/services tests/faults": _TESTING,
    ".venv/bin/pytest --collect-only -q tests/benchmarks": _TESTING,
    ".venv/bin/pytest --collect-only -q -m slow": _TESTING,
    ".venv/bin/pytest tests/unit/templates/test_dag_spec.py": _TESTING,
    ".venv/bin/pytest tests/unit/templates/test_dag_spec.py::test_bad_cron_expression": _TESTING,
    ".venv/bin/pytest tests/unit/templates -k schedule": _TESTING,
}

_DOCKER = "needs a Docker engine, which the CI machine does not have"
#: Commands the docs show but no test can run here, each with the reason (the docs mark their blocks).
NOT_RUN: dict[str, str] = {
    "make ui": "starts two servers that run until they are stopped",
    "make clean": "deletes the environment the tests run in",
    "make test-benchmarks": "the benchmark tier itself, 5-10 minutes that CI's 45-minute budget leaves out",
    "make test-slow": "the slow cases themselves, about 10 minutes that CI's 45-minute budget leaves out",
    "cp .env.example .env": _DOCKER,
    "docker compose build": _DOCKER,
    "docker compose up -d": _DOCKER,
    "docker compose --profile demo up airflow-ml-demo-upload": _DOCKER,
    "docker compose run --rm airflow-cli airflow dags unpause ride_duration.berlin": _DOCKER,
    "docker compose up -d --scale airflow-worker=4": _DOCKER,
    "docker compose --profile flower up -d": _DOCKER,
    "docker compose --profile dask up -d": _DOCKER,
}


@dataclass(frozen=True)
class DocCommand:
    """One command of a doc: where it is, and whether its block says it is not run."""

    path: str
    line: int
    command: str
    marked_not_run: bool


_FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<info>[^`]*)$")


def doc_paths(root: Path = REPO) -> list[Path]:
    """README.md, CONTRIBUTING.md and every page under docs/, sorted."""
    found: set[Path] = set()
    for pattern in DOC_FILES:
        found.update(root.glob(pattern))
    return sorted(found)


def commands_in(text: str, path: str) -> list[DocCommand]:
    """The commands of the fenced command blocks of one Markdown text.

    In a ``console`` block, the commands are the lines that start with ``$ `` (the rest is output); in the
    other command languages every line is a command but blank lines and ``#`` comments. A command continued
    with a trailing backslash is refused (ValueError): write one command per line, so that the registry and
    the tests hold it verbatim.
    """
    lines = text.splitlines()
    found: list[DocCommand] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, language = opening["fence"], (opening["info"].split() or [""])[0].lower()
        end = index + 1
        while end < len(lines) and not lines[end].startswith(fence[0] * len(fence)):
            end += 1
        if language in COMMAND_LANGUAGES:
            marked = _marked_not_run(lines, index)
            for number in range(index + 1, end):
                line = lines[number].rstrip()
                if language == "console":
                    if not line.startswith("$ "):
                        continue
                    line = line[2:]
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if line.endswith("\\"):
                    raise ValueError(f"{path}:{number + 1}: a command continues on the next line; write it on one")
                found.append(DocCommand(path, number + 1, line.strip(), marked))
        index = end + 1
    return found


def _marked_not_run(lines: list[str], fence: int) -> bool:
    """Whether the blockquote right before the block at ``fence`` (blank lines between allowed) says so."""
    index = fence - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    quote: list[str] = []
    while index >= 0 and lines[index].startswith(">"):
        quote.insert(0, lines[index].lstrip("> ").rstrip())
        index -= 1
    return NOT_RUN_MARKER in " ".join(quote)


def documented_commands(root: Path = REPO) -> list[DocCommand]:
    """Every command of README.md, CONTRIBUTING.md and docs/, in page order."""
    found: list[DocCommand] = []
    for path in doc_paths(root):
        found.extend(commands_in(path.read_text(encoding="utf-8"), str(path.relative_to(root))))
    return found


def documented_project(root: Path) -> Path:
    """A copy of this project's dags/, dag_templates/, expectations/ and plugins/ at ``root``, with its ``.venv``.

    ``root/.venv`` links to the virtualenv the tests run in, so that ``.venv/bin/airflow-ml`` works there as it
    does in a checkout after ``make demo``.
    """
    for folder in ("dags", "dag_templates", "expectations", "plugins"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return with_venv(root)


def with_venv(root: Path) -> Path:
    """Link ``root/.venv`` to the tests' virtualenv; returns ``root``."""
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return root


def shell(script: str, *, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (documented commands, one a line) with bash in ``cwd``, as a user's shell would.

    No Airflow or embedded-default variable is set (see :func:`tests.support.project.clean_env`); this
    checkout's ``airflow_ml`` is imported; bash stops at the first command that fails.
    """
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
