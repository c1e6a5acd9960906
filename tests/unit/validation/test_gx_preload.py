"""Importing airflow_ml.validation.gx_preload leaves a process with GX imported and its context built, once."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO

PROBE = """
import sys
import airflow_ml.validation.gx_preload
from airflow_ml.validation import runner
assert "great_expectations" in sys.modules
assert runner._engine.cache_info().currsize == 1
import pandas as pd
suite = {"name": "s", "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "v"}}]}
imported = set(sys.modules)
verdict, _ = runner.run_suite(pd.DataFrame({"v": [1, None]}), suite, suite_file="s")
assert verdict.status == "failed", verdict
assert runner._engine.cache_info().misses == 1, "the preloaded context is reused"
print(sorted(m for m in set(sys.modules) - imported if m.startswith("great_expectations")))
"""


def test_the_preload_imports_gx_and_builds_the_context_the_next_validation_reuses() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(REPO), "GX_ANALYTICS_ENABLED": "false"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", "a validation after the preload imports no GX module"
