"""Benchmark scripts run as committed, at a tiny size: they print their tables (no timings checked)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.benchmark]

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, timeout: float = 600, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script>`` with ``args`` as committed, in ``cwd``; its exit status is checked."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=cwd,
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
        *("rows", "start-up", "run", "api", "tasks", "exit", "floor", "tasks/floor", "total/floor", "dag", "MB"),
        *("floor", "MB"),
    ]
    figures = row.split()
    assert figures[0] == "5,000"
    startup, run, api, tasks, exit_, floor = map(float, figures[1:7])
    assert 0 < tasks <= run - api + 0.2, "the tasks run inside dag.test(), after its API started (0.2: rounding)"
    assert min(startup, api, exit_, floor) >= 0
    spent = done.stderr.split("5,000 rows, task medians: ")[1].splitlines()[0].split(", ")
    assert [part.split()[0] for part in spent] == [
        *("snapshot", "validate", "drift", "train", "register", "gate", "approve", "health_check"),
    ], "each task's median, in the order the tasks ran"
    assert "repeat 1/2: world ready" in done.stderr
    assert "repeat 2/2: world ready" in done.stderr


@pytest.mark.timeout(1800)  # two deployments and three retrains: 5 min on a quiet 2-core machine, 20 loaded
def test_retrain_benchmark_runs_the_dag_under_a_real_scheduler_cold_and_warm() -> None:
    # Each run is triggered on a real deployment (api-server, scheduler with LocalExecutor, dag-processor) in a
    # fresh world, once without and once with the warm-worker setting; the script stops unless every task succeeded.
    done = run_benchmark("retrain.py", "--mode", "scheduler", "--rows", "5000", "--repeat", "1", timeout=1800)
    header, row = done.stdout.strip().splitlines()
    assert header.split() == [
        *("rows", "floor", "cold", "run", "tasks", "idle", "sched", "warm", "run", "tasks", "idle", "sched"),
        *("cold/floor", "warm/floor"),
    ]
    figures = row.split()
    assert figures[0] == "5,000"
    floor = float(figures[1])
    cold, warm = list(map(float, figures[2:6])), list(map(float, figures[6:10]))
    assert floor > 0
    for run, tasks, idle, scheduler_cpu in (cold, warm):
        assert tasks > 0
        assert 0 <= idle < run, "the run's idle seconds are part of it"
        assert 0 < scheduler_cpu < run, "the scheduler's loop took some CPU, less than one core for the run"
    # The deployment runs with the scheduler settings docker-compose.yaml ships, and says so.
    assert "settings of every component: AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.25" in done.stderr
    assert "repeat 1/1: cold world ready" in done.stderr
    assert "repeat 1/1: warm world ready" in done.stderr


def test_train_memory_benchmark_measures_the_train_task_against_its_frame(tmp_path: Path) -> None:
    done = run_benchmark("train_memory.py", "--rows", "5000", "--repeat", "1", cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []  # all it writes is in its world (no MLflow default store in the cwd)

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


def test_validate_benchmark_measures_the_whole_task_beside_the_bare_checks_and_training() -> None:
    # The script stops unless the task's suite passes and is logged to MLflow, and unless the pandas checks
    # pass, so a run that prints its table ran the whole step and the bare checks on the same snapshot.
    done = run_benchmark("validate.py", "--rows", "2000", "--repeat", "1")
    lines = done.stdout.splitlines()
    rows = {line.split()[1]: line.split() for line in lines if line.split()[:1] == ["2,000"]}
    for variant in ("task", "bare"):
        figures = list(map(float, rows[variant][2:9]))
        assert min(figures) >= 0
        assert figures[4] >= figures[0], f"{variant}: the child's time includes its imports"
        assert figures[6] > 0, f"{variant}: its own peak resident set"
    assert any("the whole validate task (fresh process)" in line and "x the bare validation" in line for line in lines)
    assert any("training the same rows (bare LightGBM fit" in line and "% of it" in line for line in lines)
    assert lines[0].startswith("load average at start:")


@pytest.mark.timeout(1800)  # 18 fresh processes that import Airflow, beside a busy process per core
def test_parse_benchmark_measures_every_dag_file_against_a_reference_split_alike() -> None:
    # Three shard files for four cities: the fleet is generated with the count asked for, every other file of
    # dags/ is measured too, and the plain reference is split into as many files as the shards, under a busy
    # process per core (the contended mode); a second plain reference builds the scoring DAGs too (like for like).
    done = run_benchmark(
        "parse.py",
        *("--cities", "4", "--repeat", "1", "--only", "plain", "--shards", "3", "--contention", "on"),
        timeout=1800,
    )
    lines = done.stdout.splitlines()
    cores = os.cpu_count() or 1
    header = lines[1].split()
    assert header[:3] == ["cities", "cpu", "hogs"]
    assert "margin" in header
    rows = {line[17:60].strip(): line[60:].split() for line in lines[2:5]}
    others = sorted(p.stem for p in (REPO / "dags").glob("*.py") if not p.stem.startswith("retrain_shard"))
    ours = f"factory, full form, {len(others) + 3} files"
    assert list(rows) == [ours, "plain Python, 1 Param, 3 files", "plain Python, 1 Param, + scoring, 3 files"]
    for line in lines[2:5]:
        assert line.split()[:2] == ["4", str(cores)]  # measured with the competing processes
    dags = {name: int(figures[0]) for name, figures in rows.items()}
    assert dags["plain Python, 1 Param, 3 files"] == 4
    assert dags["plain Python, 1 Param, + scoring, 3 files"] == 2 * 4
    per_file = next(line for line in lines if line.startswith(f"factory files, 4 cities, {cores} cpu hogs: "))
    parts = re.findall(r"(\w+) ([\d.]+) s, ([\d.]+) s cpu \((\d+) DAGs\)", per_file.split(": ", 1)[1])
    built = {name: int(dags) for name, _, _, dags in parts}
    shards = [f"retrain_shard_{index}" for index in range(3)]
    assert sorted(built) == sorted([*others, *shards])
    # Each city in one shard file, with its retraining and its scoring DAG (the demo template scores).
    assert sum(built[shard] for shard in shards) == 2 * 4
    assert dags[ours] == sum(built.values())
    # The factory's total over each reference's, as the table's totals give it.
    totals = {name: float(figures[4]) for name, figures in rows.items()}
    for reference in ("plain Python, 1 Param", "plain Python, 1 Param, + scoring"):
        line = next(line for line in lines if line.startswith(f"factory / {reference}, 4 cities, {cores} cpu hogs: "))
        factory, plain = totals[ours], totals[f"{reference}, 3 files"]
        # The table rounds each total to 0.01 s and the line the ratio to 0.01: the ratio of the rounded totals
        # may differ from the printed one by that much.
        slack = factory / plain * (0.005 / factory + 0.005 / plain) + 0.005
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(factory / plain, abs=slack + 1e-9)
    assert all(float(cpu) > 0 for _, _, cpu, _ in parts)
    assert f"task start-up,      4 cities, {cores} cpu hogs:" in done.stdout


@pytest.mark.timeout(1200)  # two paths, a LocalCluster of two worker processes for one: 3 min loaded
@pytest.mark.parametrize("imports", ["warm", "cold"])
def test_dask_train_benchmark_runs_both_paths_at_a_tiny_size(tmp_path: Path, imports: str) -> None:
    cold = ["--cold-imports"] if imports == "cold" else []
    done = run_benchmark("dask_train.py", "--rows", "5000", "--repeat", "1", *cold, timeout=1200, cwd=tmp_path)
    # Its registry is its world's: MLflow's default one (./mlflow.db) would keep a champion between runs.
    assert list(tmp_path.iterdir()) == []

    lines = done.stdout.splitlines()
    header = lines[0].split()
    assert header[:4] == ["path", "rows", "frame", "MB"]
    assert [w for w in header if w not in ("s", "MB")][3:] == [
        *("snapshot", "validate", "train", "register", "gate", "total", "driver", "worker", "max"),
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:3]}
    assert set(rows) == {"local", "dask"}
    for path, figures in rows.items():
        assert 0 < int(figures[1].replace(",", "")) <= 5000
        seconds = list(map(float, figures[3:9]))
        assert min(seconds) > 0, path
        assert seconds[-1] == pytest.approx(sum(seconds[:-1]), abs=0.05)  # the total is the steps'
        assert float(figures[9]) > 0  # the driver's peak over its baseline
    assert rows["local"][10] == "-"  # no workers
    assert float(rows["dask"][10]) > 0
    assert "dask against local: time " in done.stdout
    expected = "cold (GX counted in each step)" if cold else "warm (as production holds them)"
    assert f"imports: {expected}" in done.stdout
    assert "load average (1, 5, 15 min) at the start" in done.stdout
    assert "repeat 1/1 done" in done.stderr
