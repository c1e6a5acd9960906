"""Benchmark scripts run as committed, at a tiny size: they print their tables (no timings checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script>`` with ``args`` as committed; its exit status is checked."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
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


def test_retrain_benchmark_repeats_the_same_work_in_fresh_worlds() -> None:
    # Two repeats: the second used to crash (the floor created its experiment again in a world shared by the
    # repeats). The script itself stops when a measured task does not succeed, so a run that ends with its
    # figures ran every task (approval step and health check included) in both repeats.
    done = run_benchmark("retrain.py", "--rows", "5000", "--repeat", "2", timeout=900)
    header, row = done.stdout.strip().splitlines()
    assert header.split() == [
        *("rows", "start-up", "run", "tasks", "exit", "floor", "tasks/floor", "total/floor", "dag", "MB"),
        *("floor", "MB"),
    ]
    figures = row.split()
    assert figures[0] == "5,000"
    startup, run, tasks, exit_, floor = map(float, figures[1:6])
    assert 0 < tasks <= run, "the tasks run inside dag.test()"
    assert min(startup, exit_, floor) >= 0
    assert "repeat 1/2: world ready" in done.stderr
    assert "repeat 2/2: world ready" in done.stderr


def test_train_memory_benchmark_measures_the_train_task_against_its_frame() -> None:
    done = run_benchmark("train_memory.py", "--rows", "5000", "--repeat", "1")

    header, row = done.stdout.splitlines()[:2]
    assert header.split() == [
        *("code", "rows", "frame", "MB", "base", "MB", "peak-base", "x", "frame", "goal", "train", "s"),
        *("cpu", "s", "holdout"),
    ]
    figures = row.split()
    assert figures[:2] == ["this", "tree"]
    frame_mb, base_mb, over_mb, ratio, goal, seconds, cpu, holdout = map(float, figures[3:])
    assert 0 < int(figures[2].replace(",", "")) <= 5000
    assert min(frame_mb, base_mb, over_mb, ratio, seconds, cpu, holdout) > 0
    assert goal == 3.0
    assert "load average (1, 5, 15 min) at the start" in done.stdout
    assert "repeat 1/1 done" in done.stderr


def test_the_benchmarks_read_the_peak_of_the_child_itself_not_its_parents() -> None:
    # A child's ru_maxrss (RUSAGE_SELF in it, RUSAGE_CHILDREN or wait4 in its parent) starts from its parent's
    # size at fork/exec on Linux: a parent holding 300 MB makes a 20 MB child look larger than 300 MB.
    script = (
        "import subprocess, sys\n"
        "ballast = bytearray(300 * 2**20)\n"
        "ballast[:: 4096] = b'x' * len(ballast[:: 4096])\n"
        "code = 'import peak_memory; print(peak_memory.peak_rss_mb())'\n"
        "print(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO / "benchmarks")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert 0 < float(done.stdout) < 100


def test_fleet_view_benchmark_runs_at_a_tiny_size() -> None:
    done = run_benchmark("fleet_view.py", "--cities", "3", "--versions", "2", "--repeat", "1")

    assert "registry: 3 cities x 2 versions" in done.stdout
    # Two registry calls per page, however many cities: one search of models, one of versions.
    assert "{'search_model_versions': 1, 'search_registered_models': 1}" in done.stdout


def test_drift_benchmark_reviews_a_tiny_fleet_and_agrees_with_its_reference() -> None:
    # The script stops unless the reference's p-values equal the cities' and its q-values the review's, so a
    # run that prints its table compared two computations of the same tests.
    done = run_benchmark("drift.py", *("--cities", "20", "--features", "5", "--days", "10", "--repeat", "2"))
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "drift review, 20 cities x 5 features (200 tests), 10 nights of history (min_history 8); "
        "median of 2 fresh processes each"
    )
    assert lines[1].split() == ["review", "p-values", "reference", "review/ref", "(p+review)/ref"]
    rows = {line[:24].strip(): line[24:].split() for line in lines[2:7]}
    assert list(rows) == ["process (imports incl.)", "work after imports", "imports", "CPU (user+sys)", "peak RSS"]
    for label in ("process (imports incl.)", "work after imports", "CPU (user+sys)"):
        review, pvalues, reference = (float(x.rstrip("s")) for x in rows[label][:3])
        assert min(review, pvalues, reference) > 0, label
    assert "q-values agreed: 200 of 200 tests (largest relative difference" in done.stdout
    for part in ("read latest/ (fleet_latest)", "adjustment (Benjamini-Yekutieli)", "records assembled and written"):
        assert part in done.stdout
    assert "repeat 2/2 done" in done.stderr
