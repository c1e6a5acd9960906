"""Benchmark scripts run as committed: `benchmarks/score.py` at a tiny size prints its tables (no timings checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script>`` with ``args`` as committed; its exit status is checked."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_score_benchmark_runs_at_a_tiny_size() -> None:
    done = run_benchmark(
        "score.py",
        *("--rows", "2000", "--repeat", "1", "--cities", "2", "--requests", "20", "--clients", "2"),
        *("--monitor-cities", "2", "--windows", "3"),
    )
    out = done.stdout
    assert "batch scoring, 2,000 rows, median of 1 fresh processes each" in out
    for part in ("read and hash the partition", "prediction ids", "write the log (ids included)"):
        assert part in out
    assert "HTTP, one uvicorn process" in out
    assert "with 2 models" in out
    assert "'loads': 2, 'evictions': 0" in out  # each city's model loaded once, none evicted
    assert "monitor, first run: 2 cities x 3 windows" in out
    assert "verdicts {'healthy': 2}" in out


def test_fleet_view_benchmark_runs_at_a_tiny_size() -> None:
    done = run_benchmark("fleet_view.py", "--cities", "3", "--versions", "2", "--repeat", "1")

    assert "registry: 3 cities x 2 versions" in done.stdout
    # Two registry calls per page, however many cities: one search of models, one of versions.
    assert "{'search_model_versions': 1, 'search_registered_models': 1}" in done.stdout
