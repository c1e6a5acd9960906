"""The whole Dask path against the local path on the same rows: seconds and each process's peak memory (issue 17).

**The world** (fresh temporary folder, fixed seeds): São Paulo's demo trips scaled to ``--rows`` rows, the city's
settings as the factory builds them from ``dag_templates/templates/ride_duration.yaml`` (no window, as
``retrain.py``; ``training.engine`` local or dask, and for dask ``--workers`` workers of ``--memory`` each), an
MLflow store in SQLite.

**Measured**, each path in a fresh process (the driver, as the Airflow task's process would be) per repeat: the
steps the operators call, in order: ``snapshot_step.snapshot``, ``validate_step.validate``,
``train_step.train``, ``register_step.register``, ``gate_step.gate`` (the first model: no champion yet), each
timed. The dask driver starts a LocalCluster of worker processes (one thread each: the machine's cores are shared)
and warms them before anything is timed; the steps then use that cluster, as tasks reaching one cluster through a
``dask`` connection do. Memory is each process's own peak resident size (``VmHWM``, ``peak_memory.py``) over its
size once warm, started over (``clear_refs``) before the first step: the driver's, and each worker's (read inside
it).

**Warm** means what production's processes hold before a run: the driver has imported
``worker_preload.TASK_MODULES`` (GX among them), as a task process of an Airflow worker with ``AIRFLOW_ML_PRELOAD``
(the compose file's setting) has, and each Dask worker has imported GX, as a long-lived worker has after its first
check. ``--cold-imports`` warms only the libraries both paths' steps share (LightGBM's Dask module, MLflow's pyfunc,
matplotlib, pyarrow and the project's Dask modules), so each step's first import of GX is counted, in the driver and
in every worker at once, as on a freshly started Airflow worker and cluster.

    .venv/bin/python benchmarks/dask_train.py --rows 1000000 --repeat 1

Prints, per path and as medians over the repeats: the rows, the frame's MB (pandas' ``memory_usage(deep=True)`` of
the snapshot), each step's seconds and the total, the driver's peak over its baseline and the largest worker's,
and the largest per-process figure; then the dask path's against the local one's (the issue's goal: at most half
the per-process peak, at most 1.5x the time) and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from child_environment import child_environment  # benchmarks/ is the script's folder, first on sys.path
from peak_memory import peak_rss_mb, reset_peak, rss_mb

REPO = Path(__file__).resolve().parent.parent
CITY = "sao_paulo"
# sao_paulo writes about 1,990 trips a day at scale 1 over the 60 days of the initial batch.
ROWS_PER_SCALE = 119_500
STEPS = ("snapshot", "validate", "train", "register", "gate")
COLUMNS = (
    f"{'path':<6} {'rows':>10} {'frame MB':>9} "
    + " ".join(f"{s + ' s':>10}" for s in STEPS)
    + f" {'total s':>8} {'driver MB':>10} {'worker MB':>10} {'max MB':>7}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per path (median)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (processes, one thread each)")
    parser.add_argument("--memory", default="4GiB", help="each Dask worker's memory limit")
    parser.add_argument(
        "--cold-imports",
        action="store_true",
        help="warm only the libraries, not GX nor the task modules: each step's first import of GX is counted",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = _run_child(Path(args.child[0]), args.child[1], args.workers, args.memory, cold=args.cold_imports)
        print(json.dumps(child))
        return
    loads = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"local": [], "dask": []}
    with tempfile.TemporaryDirectory(prefix="airflow-ml-bench-dask-") as tmp:
        started = time.perf_counter()
        rows, frame_mb = _prepare(Path(tmp), args.rows)
        print(f"world written in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        for repeat in range(args.repeat):
            for path in runs:
                runs[path].append(_measure(Path(tmp), path, args))
            print(f"  repeat {repeat + 1}/{args.repeat} done", file=sys.stderr, flush=True)
    print(COLUMNS)
    for path, measured in runs.items():
        _print_row(path, rows, frame_mb, measured)
    local, dask = (_summary(runs[p]) for p in ("local", "dask"))
    print(
        f"\ndask against local: time {dask['total'] / local['total']:.2f}x (goal at most 1.5x), largest "
        f"per-process peak {dask['max'] / local['max']:.2f}x (goal at most 0.5x)"
    )
    print(f"imports: {'cold (GX counted in each step)' if args.cold_imports else 'warm (as production holds them)'}")
    print(f"load average (1, 5, 15 min) at the start {_fmt(loads)}, at the end {_fmt(os.getloadavg())}")


def _fmt(loads: tuple[float, ...]) -> str:
    return ", ".join(f"{x:.2f}" for x in loads)


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Medians of a path's repeats: each step's seconds, the total, the driver's and workers' peaks, the largest."""
    found = {s: statistics.median(r["seconds"][s] for r in runs) for s in STEPS}
    found["total"] = statistics.median(sum(r["seconds"].values()) for r in runs)
    found["driver"] = statistics.median(r["driver_mb"] for r in runs)
    found["worker"] = statistics.median(max(r["workers_mb"], default=0.0) for r in runs)
    found["max"] = max(found["driver"], found["worker"])
    return found


def _print_row(path: str, rows: int, frame_mb: float, runs: list[dict[str, Any]]) -> None:
    found = _summary(runs)
    steps = " ".join(f"{found[s]:>10.2f}" for s in STEPS)
    worker = f"{found['worker']:>10.0f}" if path == "dask" else f"{'-':>10}"
    print(
        f"{path:<6} {rows:>10,} {frame_mb:>9.1f} {steps} {found['total']:>8.2f} {found['driver']:>10.0f} {worker} "
        f"{found['max']:>7.0f}",
        flush=True,
    )


def _prepare(root: Path, rows: int) -> tuple[int, float]:
    """The world: demo trips and both cities' files (one per engine); returns the rows and the frame's MB."""
    import pandas as pd

    from airflow_ml.data.demo import write_demo_data

    (root / "templates").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", root / "templates")
    for engine in ("local", "dask"):
        folder = root / f"cities_{engine}"
        folder.mkdir()
        (folder / f"{CITY}.yaml").write_text(
            f"city: {CITY}\ntemplate: ride_duration\ndataset:\n  window_days: null\ntraining:\n  engine: {engine}\n",
            encoding="utf-8",
        )
    files = write_demo_data(root / "data", cities=[CITY], batch="initial", scale=rows / ROWS_PER_SCALE)
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return len(frame), float(frame.memory_usage(deep=True).sum()) / 2**20


def _measure(world: Path, path: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(world), path, "--workers", str(args.workers)]
    cmd += ["--cold-imports"] if args.cold_imports else []
    done = subprocess.run(
        [*cmd, "--memory", args.memory], env=child_environment(REPO), cwd=world, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the {path} path failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _run_child(world: Path, path: str, workers: int, memory: str, *, cold: bool) -> dict[str, Any]:
    """One path's steps in this process (the dask path on a LocalCluster it starts); its seconds and peaks."""
    import contextlib

    from mlflow import MlflowClient

    from airflow_ml.factory.tasks import task_settings
    from airflow_ml.templates import load_city_file

    store = f"sqlite:///{world}/mlflow-{path}-{os.getpid()}.db"
    # The registry named too: MLflow's default registry is not the client's tracking store but ./mlflow.db.
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.search_experiments()  # the store is created (and migrated) before the baseline
    config = load_city_file(world / f"cities_{path}" / f"{CITY}.yaml", world / "templates")
    tasks = task_settings(config, expectations_dir=REPO / "expectations")
    with contextlib.ExitStack() as stack:
        cluster = None
        if path == "dask":
            cluster = stack.enter_context(_cluster(workers, memory, cold=cold))
        _warm_up()
        if not cold:
            _warm_task_process()
        reset_peak()
        base = rss_mb()
        if cluster is not None:
            cluster.run(_reset_worker)
        seconds = _steps(client, world, tasks, path, cluster, artifacts=f"file://{world}/artifacts-{os.getpid()}")
        workers_mb = [] if cluster is None else list(cluster.run(_worker_peak).values())
    return {"seconds": seconds, "driver_mb": peak_rss_mb() - base, "workers_mb": workers_mb}


def _steps(client: Any, world: Path, tasks: Any, path: str, cluster: Any, *, artifacts: str) -> dict[str, float]:
    """The retraining steps, timed, as the operators call them (the dask ones on ``cluster``)."""
    from airflow_ml.ml.dask_settings import ClusterAddress
    from airflow_ml.ml.steps import gate_step, register_step, snapshot_step, train_step, validate_step
    from airflow_ml.templates.suite_files import load_suite, suite_file

    seconds: dict[str, float] = {}

    def timed(step: str, work: Any) -> Any:
        started = time.perf_counter()
        out = work()
        seconds[step] = time.perf_counter() - started
        return out

    engine = "dask" if cluster is not None else "local"
    data_root = str(world / "data")
    run_id = f"bench-{path}-{os.getpid()}"
    uris = snapshot_step.sources(tasks.snapshot, data_root)
    manifest = timed(
        "snapshot",
        lambda: snapshot_step.snapshot(
            tasks.snapshot, uris, data_root=data_root, run_id=run_id, engine=engine, dask_client=cluster
        ),
    )
    validation = tasks.validation
    suite = load_suite(validation.expectations_dir, validation.suite, city=CITY)
    path_of = str(suite_file(validation.expectations_dir, validation.suite))
    found = timed(
        "validate",
        lambda: validate_step.validate(
            manifest.uri, validation, suite=suite, suite_path=path_of, engine=engine, dask_client=cluster
        ),
    )
    if found.verdict.status == "failed":
        raise SystemExit(f"the {path} validation failed: {found.verdict.summary()}")
    address = ClusterAddress(cluster.scheduler.address) if cluster is not None else None
    training = timed(
        "train",
        lambda: train_step.train(
            client, manifest, tasks.training, run_id=run_id, artifact_root=artifacts, cluster=address
        ),
    )
    payload = snapshot_step.payload(manifest)
    version, _ = timed(
        "register",
        lambda: register_step.register(client, tasks.training.registered_model, training, payload, tags={}),
    )
    timed(
        "gate",
        lambda: gate_step.gate(client, manifest, tasks.gate, challenger_version=str(version.version),
                               dask_session=lambda: contextlib.nullcontext(cluster)),
    )  # fmt: skip
    return seconds


def _cluster(workers: int, memory: str, *, cold: bool) -> Any:
    """A client of a LocalCluster of ``workers`` worker processes (one thread each) started as a task starts it
    (``training.dask.local_cluster``), its workers warmed up; closed with it."""
    import contextlib

    from airflow_ml.ml.dask_client import dask_client
    from airflow_ml.ml.dask_settings import DaskSettings, LocalClusterSettings

    @contextlib.contextmanager
    def started() -> Any:
        size = LocalClusterSettings(n_workers=workers, threads_per_worker=1, memory_limit=memory, processes=True)
        with dask_client(DaskSettings(local_cluster=size), None) as client:
            client.run(_warm_up)
            if not cold:
                client.run(_import_engine)
            yield client

    return started()


def _warm_up() -> None:
    """What the steps import, in the driver and in each worker, before the baseline is read."""
    import lightgbm.dask  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import mlflow.pyfunc  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import airflow_ml.data.dask_snapshot
    import airflow_ml.ml.dask_holdout
    import airflow_ml.ml.dask_train
    import airflow_ml.validation.partitioned  # noqa: F401


def _warm_task_process() -> None:
    """What a task process of a warm Airflow worker has imported (``AIRFLOW_ML_PRELOAD``, as the compose file sets
    it): ``worker_preload.TASK_MODULES``, GX among them."""
    import importlib

    from airflow_ml.worker_preload import TASK_MODULES

    for name in TASK_MODULES:
        importlib.import_module(name)


def _import_engine() -> None:
    """In a worker: GX, as a long-lived worker holds it after its first check."""
    import great_expectations  # noqa: F401


def _reset_worker() -> None:
    reset_peak()
    os.environ["AIRFLOW_ML_BENCH_BASE_MB"] = str(rss_mb())


def _worker_peak() -> float:
    """In a worker: its peak over its size when the first step started, MB."""
    return peak_rss_mb() - float(os.environ["AIRFLOW_ML_BENCH_BASE_MB"])


if __name__ == "__main__":
    main()
