"""Retraining one city: the full DAG run against the floor of a bare script, side by side in one run.

The floor reads the same parquet partitions, runs the suite's checks as vectorised pandas, fits the same
LightGBM model (same parameters, same early stopping, same split) and logs and registers it in MLflow.
The DAG run is the city's real DAG through ``dag.test()``: snapshot, GX validation, drift, training,
registration, the gate and the health check (the gate skips the approval step, which asks nobody). Each
measurement is a fresh process (imports included), alternating DAG and floor.

``--mode scheduler`` runs the DAG as production does instead (benchmarks/retrain_scheduler.py): a real
scheduler with the LocalExecutor, each task a process of its own, timed from the run's creation to its end,
cold and warm (``AIRFLOW_ML_PRELOAD``), with the scheduler settings docker-compose.yaml ships
(``--airflow-defaults``: Airflow's own), and prints per row the floor, each deployment's run, the sum of its
tasks, its idle seconds (no task running), its scheduler's CPU seconds and the run's ratio to the floor::

    .venv/bin/python benchmarks/retrain.py --mode scheduler --rows 100000 1000000 --repeat 3

Every repeat does the same work in a world of its own: a fresh Airflow database, MLflow store and data,
and a champion trained beforehand (unmeasured) on the same data with few rounds, so that the measured run
has a champion to compare with (drift and the gate score both models) and a challenger that differs and
wins (it is promoted, so the health check runs too; the gate skips the approval step, which asks nobody). A
measured run in which a task did not succeed stops the benchmark, naming the task.

    .venv/bin/python benchmarks/retrain.py --rows 100000 1000000 --repeat 3

Prints, as medians: the DAG process's seconds split into start-up (interpreter, imports and DAG build, until
``dag.test()`` is called), the run (``dag.test()`` itself: its in-process execution API and the tasks), the
start-up of that API (started before the run, so that the first task's duration does not hold it), the
sum of the task durations and the exit; the floor's seconds; the ratios of the tasks' sum and of the whole
process to the floor; and the peak RSS of each process (maximum over the repeats), read by the process itself
(``VmHWM``, see ``peak_memory.py``).
"""

from __future__ import annotations

import argparse
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

from floor_fit import fit_floor  # benchmarks/ is the script's folder, first on sys.path
from peak_memory import peak_rss_mb

REPO = Path(__file__).resolve().parent.parent
CITY = "sao_paulo"
DAG_ID = f"ride_duration.{CITY}"
# sao_paulo writes about 1,990 trips a day at scale 1 over the 60 days of the initial batch.
ROWS_PER_SCALE = 119_500
#: The unmeasured champion of every world: the same data, too few rounds to win against the measured run's.
WEAK_CHAMPION = {"num_boost_round": 20}
COLUMNS = (
    f"{'rows':>10} {'start-up':>9} {'run':>7} {'api':>5} {'tasks':>7} {'exit':>6} {'floor':>7} "
    f"{'tasks/floor':>12} {'total/floor':>12} {'dag MB':>8} {'floor MB':>9}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--mode",
        choices=("dag", "scheduler"),
        default="dag",
        help="dag: dag.test() in one process; scheduler: a real scheduler with LocalExecutor, cold and warm",
    )
    parser.add_argument(
        "--airflow-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="scheduler mode: an AIRFLOW__SECTION__KEY=value for every component, e.g. to try scheduler intervals",
    )
    parser.add_argument(
        "--airflow-defaults",
        action="store_true",
        help="scheduler mode: Airflow's own defaults instead of the scheduler settings docker-compose.yaml ships",
    )
    parser.add_argument("--child", choices=("dag", "seed", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--world", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        world = Path(args.world)
        if args.child == "floor":
            _run_floor(world)
        else:
            _run_dag(world, measured=args.child == "dag")
        return
    if args.mode == "scheduler":
        from retrain_scheduler import SHIPPED, shipped_settings

        if args.airflow_defaults:  # nor the caller's own environment's values for them
            for name in SHIPPED:
                os.environ.pop(name, None)
        settings = {} if args.airflow_defaults else shipped_settings()
        settings |= dict(setting.split("=", 1) for setting in args.airflow_setting)
        _main_scheduler(args.rows, args.repeat, settings)
        return
    print(COLUMNS)
    for rows in args.rows:
        dag: list[dict[str, Any]] = []
        floor: list[dict[str, Any]] = []
        for repeat in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="airflow-ml-bench-") as tmp:
                world = _prepare(Path(tmp), rows)
                print(f"  {rows:,} rows, repeat {repeat + 1}/{args.repeat}: world ready", file=sys.stderr, flush=True)
                dag.append(_measure("dag", world))
                floor.append(_measure("floor", world))
        _print_row(rows, dag, floor)


def _print_row(rows: int, dag: list[dict[str, Any]], floor: list[dict[str, Any]]) -> None:
    def median(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    floor_s = median(floor, "total")
    print(
        f"{rows:>10,} {median(dag, 'startup'):>9.1f} {median(dag, 'run'):>7.1f} {median(dag, 'api'):>5.1f} "
        f"{median(dag, 'tasks'):>7.1f} "
        f"{median(dag, 'exit'):>6.1f} {floor_s:>7.1f} {median(dag, 'tasks') / floor_s:>12.2f} "
        f"{median(dag, 'total') / floor_s:>12.2f} {max(r['peak_mb'] for r in dag):>8.0f} "
        f"{max(r['peak_mb'] for r in floor):>9.0f}",
        flush=True,
    )
    # Where the tasks' time goes: each task's median over the repeats, in the order they ran.
    spent = {task: statistics.median(r["each"][task] for r in dag) for task in dag[0]["each"]}
    print(f"  {rows:,} rows, task medians: " + ", ".join(f"{t} {s:.1f} s" for t, s in spent.items()), file=sys.stderr)


def _prepare(root: Path, rows: int) -> Path:
    """A world of its own: templates, data, a migrated Airflow database and a champion, all from fixed seeds."""
    from airflow_ml.data.demo import write_demo_data

    (root / "templates").mkdir()
    (root / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", root / "templates")
    (root / "cities" / f"{CITY}.yaml").write_text(
        f"city: {CITY}\ntemplate: ride_duration\ndataset:\n  window_days: null\ndag:\n  retries: 0\n", encoding="utf-8"
    )
    write_demo_data(root / "data", cities=[CITY], batch="initial", scale=rows / ROWS_PER_SCALE)
    (root / "dags").mkdir()
    (root / "dags" / "retrain.py").write_text(
        "from airflow_ml.factory import register_dags\n"
        f"register_dags(globals(), templates_root={str(root)!r}, expectations_dir={str(REPO / 'expectations')!r})\n"
    )
    env = _env(root)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    _measure("seed", root)
    return root


def _env(root: Path) -> dict[str, str]:
    store = f"sqlite:///{root}/mlflow.db"
    conn = {"conn_type": "mlflow", "extra": {"tracking_uri": store, "artifact_root": f"file://{root}/artifacts"}}
    return {
        **os.environ,
        "AIRFLOW_HOME": str(root / "airflow"),
        # Named, not left to AIRFLOW_HOME: a caller's own setting (a test session's) would win over the world's.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root}/airflow/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_ML_DATA_ROOT": str(root / "data"),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(conn),
        "MLFLOW_TRACKING_URI": store,
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
    }


def _measure(kind: str, world: Path) -> dict[str, Any]:
    """Run one child process; its wall time, its own peak RSS and (for ``dag``) the phases it recorded."""
    times = world / f"{kind}-times.json"
    times.unlink(missing_ok=True)
    start = time.time()
    cmd = [sys.executable, __file__, "--child", kind, "--world", str(world)]
    log = world / f"{kind}.log"
    proc = subprocess.Popen(cmd, env=_env(world), cwd=world, stdout=log.open("w"), stderr=subprocess.STDOUT)
    status = proc.wait()
    end = time.time()
    if status != 0:
        errors = [line for line in log.read_text().splitlines() if "error" in line.lower()]
        raise SystemExit(f"{kind} run failed; log {log}:\n" + "\n".join(errors[-20:]))
    phases = json.loads(times.read_text())
    measured: dict[str, Any] = {"total": end - start, "peak_mb": phases["peak_mb"]}
    if kind == "dag":
        measured |= {
            "startup": phases["called"] - start,
            "run": phases["returned"] - phases["called"],
            "api": phases["api"],
            "tasks": phases["tasks"],
            "exit": end - phases["returned"],
            "each": phases["each"],
        }
    return measured


def _run_dag(world: Path, *, measured: bool) -> None:
    """The city's DAG through ``dag.test()``: the weak champion (``seed``) or the measured run, every task a success
    but the approval step, which the gate skips (nobody is asked)."""
    from retrain_scheduler import unexpected_states

    from airflow_ml.factory import register_dags

    dag = register_dags({}, templates_root=world, expectations_dir=REPO / "expectations")[DAG_ID]
    called = time.time()
    # dag.test() starts its in-process execution API inside the first task's recorded duration: the app, then
    # its first request (the app's start-up in its event loop's thread, about 4 s). Started here (the server is
    # cached), it is timed as dag.test()'s own cost, apart from the tasks, as a deployment's API server is.
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    api = in_process_api_server()
    # The transport dag.test()'s task runner is given (its base URL as Airflow's own in-process client sets it).
    with httpx.Client(transport=api.transport, base_url="http://in-process.invalid./") as first:
        first.get("health").raise_for_status()
    api_ready = time.time()
    run = dag.test(run_conf={} if measured else WEAK_CHAMPION)
    returned = time.time()
    tasks = run.get_task_instances()
    unfinished = unexpected_states([(ti.task_id, str(ti.state)) for ti in tasks])
    if str(run.state) != "success" or unfinished:
        raise SystemExit(f"DAG run ended {run.state}; not as expected: {', '.join(unfinished) or 'none'}")
    phases: dict[str, Any] = {"peak_mb": peak_rss_mb()}
    if measured:
        ordered = sorted(tasks, key=lambda ti: ti.start_date)
        each = {ti.task_id: (ti.end_date - ti.start_date).total_seconds() for ti in ordered}
        phases |= {"called": called, "api": api_ready - called, "returned": returned}
        phases |= {"tasks": sum(each.values()), "each": each}
    (world / f"{'dag' if measured else 'seed'}-times.json").write_text(json.dumps(phases), encoding="utf-8")


def _run_floor(world: Path) -> None:
    import glob

    import mlflow
    import numpy as np
    import pandas as pd

    from airflow_ml.templates import load_city_file

    config = load_city_file(world / "cities" / f"{CITY}.yaml", world / "templates")
    frame = pd.concat(
        [pd.read_parquet(f) for f in sorted(glob.glob(f"{world}/data/raw/trips/{CITY}/date=*/*.parquet"))],
        ignore_index=True,
    )
    # The suite's checks, vectorised.
    checks = [
        len(frame) >= 500,
        all(c in frame for c in ("pickup_at", "distance_km", "pickup_zone", "duration_min")),
        frame["pickup_at"].notna().all(),
        frame["duration_min"].notna().all() and frame["duration_min"].between(0.5, 600).all(),
        frame["distance_km"].notna().all() and frame["distance_km"].between(0, 300).all(),
        frame["pickup_hour"].between(0, 23).all() and frame["weekday"].between(0, 6).all(),
        frame["is_raining"].isin([0, 1]).all(),
        frame["pickup_zone"].notna().mean() >= 0.95,
        frame["temperature_c"].dropna().between(-40, 50).all() and frame["temperature_c"].notna().mean() >= 0.9,
    ]
    if not all(checks):
        raise SystemExit("floor: data checks failed")
    fit = fit_floor(frame, config)
    rmse = float(np.sqrt(np.mean((fit.booster.predict(fit.holdout_x) - fit.holdout_y) ** 2)))
    # Artifacts beside the world's store, never in the caller's working directory.
    # Each world is fresh, so the experiment is new in every repeat.
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("floor", artifact_location=f"file://{world}/floor"))
    with mlflow.start_run():
        mlflow.log_params(fit.params)
        mlflow.log_metric("holdout_rmse", rmse)
        mlflow.lightgbm.log_model(
            fit.booster, name="model", registered_model_name="floor", pip_requirements=["lightgbm"]
        )
    (world / "floor-times.json").write_text(json.dumps({"peak_mb": peak_rss_mb()}), encoding="utf-8")


# -- the scheduler mode (benchmarks/retrain_scheduler.py) ---------------------------------------------------------

SCHEDULER_COLUMNS = (
    f"{'rows':>10} {'floor':>7} {'cold run':>9} {'tasks':>7} {'idle':>6} {'sched':>6} {'warm run':>9} {'tasks':>7} "
    f"{'idle':>6} {'sched':>6} {'cold/floor':>11} {'warm/floor':>11}"
)


def _main_scheduler(all_rows: list[int], repeat: int, settings: dict[str, str]) -> None:
    """Per repeat: a fresh world for the cold deployment, one for the warm, and the floor in the last.

    The order of cold and warm alternates between repeats, so that neither always runs first. ``settings``
    (``AIRFLOW__…`` variables) are given to every component of both deployments.
    """
    from retrain_scheduler import measure_scheduled, scheduler_env, without_schedule

    shown = ", ".join(f"{name}={value}" for name, value in sorted(settings.items())) or "Airflow's defaults"
    print(f"  settings of every component: {shown}", file=sys.stderr, flush=True)
    print(SCHEDULER_COLUMNS)
    for rows in all_rows:
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        floor: list[dict[str, Any]] = []
        for index in range(repeat):
            for preload in (False, True) if index % 2 == 0 else (True, False):
                with tempfile.TemporaryDirectory(prefix="airflow-ml-bench-") as tmp:
                    world = _prepare(Path(tmp), rows)
                    without_schedule(world, CITY)
                    kind = "warm" if preload else "cold"
                    print(f"  {rows:,} rows, repeat {index + 1}/{repeat}: {kind} world ready", file=sys.stderr)
                    runs[preload].append(
                        measure_scheduled(
                            world, {**scheduler_env(world, _env(world), preload=preload), **settings}, DAG_ID
                        )
                    )
                    if preload == (index % 2 == 0):  # the second world of the repeat
                        floor.append(_measure("floor", world))
        _print_scheduler_row(rows, runs, floor)


def _print_scheduler_row(rows: int, runs: dict[bool, list[dict[str, float]]], floor: list[dict[str, float]]) -> None:
    def median(kind: bool, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    floor_s = statistics.median(r["total"] for r in floor)
    cold, warm = (
        f"{median(k, 'run'):>9.1f} {median(k, 'tasks'):>7.1f} {median(k, 'idle'):>6.1f} "
        f"{median(k, 'scheduler_cpu'):>6.1f}"
        for k in (False, True)
    )
    print(
        f"{rows:>10,} {floor_s:>7.1f} {cold} {warm} {median(False, 'run') / floor_s:>11.2f} "
        f"{median(True, 'run') / floor_s:>11.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
