"""docs/testing.md's commands that a test can afford, run as shown: one file, one test, ``-k``, a collection.

They run in a folder that holds this checkout's tests/ and pyproject.toml and a ``.venv`` linked to the tests'
virtualenv, as in a checkout after ``make demo``. The whole-tier commands are run by ``make test``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.support import REPO
from tests.support.documented import shell, with_venv


def test_one_file_one_test_and_a_collection_run_as_shown(tmp_path: Path) -> None:
    (tmp_path / "tests").symlink_to(REPO / "tests", target_is_directory=True)
    (tmp_path / "pyproject.toml").symlink_to(REPO / "pyproject.toml")
    with_venv(tmp_path)
    commands = [
        ".venv/bin/pytest tests/unit/templates/test_dag_spec.py",
        ".venv/bin/pytest tests/unit/templates/test_dag_spec.py::test_bad_cron_expression",
        ".venv/bin/pytest tests/unit/templates -k schedule",
        ".venv/bin/pytest --collect-only -q tests/services tests/faults",
        ".venv/bin/pytest --collect-only -q tests/benchmarks",
        ".venv/bin/pytest --collect-only -q -m slow",
    ]

    outputs = [shell(command, cwd=tmp_path) for command in commands]

    for command, done in zip(commands, outputs, strict=True):
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    one_file, one_test, selected, collected, benchmarks, slow = (done.stdout for done in outputs)
    passed = re.search(r"\b(\d+) passed\b", one_file)
    assert passed, one_file
    assert int(passed.group(1)) > 5, one_file  # the file's tests, its parametrized cases each
    assert re.search(r"\b1 passed\b", one_test), one_test
    assert re.search(r"\bdeselected\b", selected), selected
    assert "failed" not in selected, selected
    assert "tests/services/test_local_executor.py::" in collected
    assert "tests/faults/test_service_outages.py::" in collected
    assert "tests/benchmarks/test_benchmark_scripts.py::" in benchmarks
    assert "tests/unit/" not in benchmarks
    # The slow cases: the Dask cluster tests of both tiers and the simulations, and nothing of the deployments.
    assert "tests/integration/test_dask_training_dag.py::" in slow
    assert "tests/unit/ml/test_dask_train.py::" in slow
    assert "tests/unit/ml/test_drift_calibration.py::test_a_fleet_without_drift_alarms" in slow
    assert "tests/unit/ml/test_drift_calibration.py::test_small_and_large_cities" not in slow
    assert "tests/services/" not in slow
    assert "tests/faults/" not in slow


def test_make_test_runs_every_tier_but_the_benchmarks_and_the_slow_cases_which_have_their_own_targets() -> None:
    # `make test` runs a bare `pytest`: its tiers are pyproject's testpaths. A new tier folder left out of them would
    # silently leave CI; only the benchmark tier is left out on purpose, and its own target runs it.
    testpaths = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"][
        "testpaths"
    ]
    tiers = sorted(f"tests/{folder.name}" for folder in (REPO / "tests").iterdir() if any(folder.glob("test_*.py")))

    assert sorted(testpaths) == [tier for tier in tiers if tier != "tests/benchmarks"]
    assert "tests/benchmarks" in tiers
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test-benchmarks:.*\n\t\$\(BIN\)/pytest tests/benchmarks$", makefile, re.MULTILINE), makefile
    # `make test` leaves out the slow cases by their marker, and `make test-slow` runs exactly them.
    assert re.search(r'^test: .*\n\t\$\(BIN\)/pytest -m "not slow"$', makefile, re.MULTILINE), makefile
    assert re.search(r"^test-slow:.*\n\t\$\(BIN\)/pytest -m slow$", makefile, re.MULTILINE), makefile
