"""The whole validate task against the bare validation, and as a share of training the same rows.

For each size, a frame of demo trips with 12 columns is written once as one partition and snapshotted
(``take_snapshot``, unmeasured), and an MLflow SQLite store is migrated (unmeasured). Every measurement is
a fresh process, so that it pays its imports as a task process does; runs are interleaved:

- task: the validate task's step, ``airflow_ml.ml.steps.validate_step.validate``, as the operator calls it:
  importing it (GX, MLflow, pandas), checking the suite, reading the snapshot (the named columns and the
  schema), validating with GX, the summary and the HTML report, logging the validation run to MLflow and
  writing verdict, result and report beside the snapshot;
- bare: importing pandas, reading the snapshot's parquet and the same checks as vectorised pandas;
- train: the bare LightGBM fit of ``benchmarks/retrain.py``'s floor (the city's parameters, split and early
  stopping) on the same rows: the least training can cost, so the task's share of it is an upper bound.

The suite has 16 expectations: row count, the set of columns, not-null, ranges, value sets, ``mostly``.
Each child reports its phases (import, read, validate, log) and its own peak resident set (``VmHWM`` of
``/proc/self/status``); the parent adds the process's wall time (interpreter start and exit included).

    .venv/bin/python benchmarks/validate.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START = time.perf_counter()  # a child's clock starts before it imports anything heavy
REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("task", "bare", "train")
CITY_FILE = REPO / "dag_templates" / "cities" / "berlin.yaml"
COLUMNS = [
    "trip_id",
    "pickup_at",
    "pickup_hour",
    "weekday",
    "pickup_zone",
    "distance_km",
    "temperature_c",
    "is_raining",
    "duration_min",
    "fare_eur",
    "payment",
    "passengers",
]


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


SUITE = {
    "name": "bench_trips",
    "expectations": [
        _expect("table_row_count_to_be_between", min_value=500),
        _expect("table_columns_to_match_set", column_set=COLUMNS),
        _expect("column_values_to_not_be_null", column="pickup_at"),
        _expect("column_values_to_not_be_null", column="duration_min"),
        _expect("column_values_to_be_between", column="duration_min", min_value=0.5, max_value=600),
        _expect("column_values_to_not_be_null", column="distance_km"),
        _expect("column_values_to_be_between", column="distance_km", min_value=0, max_value=300),
        _expect("column_values_to_be_between", column="pickup_hour", min_value=0, max_value=23),
        _expect("column_values_to_be_between", column="weekday", min_value=0, max_value=6),
        _expect("column_values_to_be_in_set", column="is_raining", value_set=[0, 1]),
        _expect("column_values_to_not_be_null", column="pickup_zone", mostly=0.95),
        _expect("column_values_to_be_between", column="temperature_c", min_value=-40, max_value=50),
        _expect("column_values_to_not_be_null", column="temperature_c", mostly=0.9),
        _expect("column_values_to_be_between", column="fare_eur", min_value=0, max_value=500),
        _expect("column_values_to_be_in_set", column="payment", value_set=["card", "cash", "app"]),
        _expect("column_values_to_be_between", column="passengers", min_value=1, max_value=6),
    ],
}


def pandas_checks(frame: Any) -> list[bool]:
    """The suite's 16 checks, vectorised."""

    def nonnull(column: str, mostly: float = 1.0) -> bool:
        return bool(frame[column].notna().mean() >= mostly)

    def between(column: str, low: float, high: float) -> bool:
        values = frame[column].dropna()
        return bool(((values >= low) & (values <= high)).all())

    return [
        len(frame) >= 500,
        set(frame.columns) == set(COLUMNS),
        nonnull("pickup_at"),
        nonnull("duration_min"),
        between("duration_min", 0.5, 600),
        nonnull("distance_km"),
        between("distance_km", 0, 300),
        between("pickup_hour", 0, 23),
        between("weekday", 0, 6),
        bool(frame["is_raining"].dropna().isin([0, 1]).all()),
        nonnull("pickup_zone", 0.95),
        between("temperature_c", -40, 50),
        nonnull("temperature_c", 0.9),
        between("fare_eur", 0, 500),
        bool(frame["payment"].dropna().isin(["card", "cash", "app"]).all()),
        between("passengers", 1, 6),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]))))
        return
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    print(
        f"{'rows':>10} {'variant':<6} {'import':>7} {'read':>6} {'validate':>9} {'log':>6} {'in child':>9} "
        f"{'process':>8} {'peak MB':>8}"
    )
    print("(in child: from the script's first line to the end; process: the child's wall time, seen by the parent)")
    with tempfile.TemporaryDirectory(prefix="airflow-ml-validate-") as tmp:
        for rows in args.rows:
            world = _world(Path(tmp) / str(rows), rows)
            runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
            for _ in range(args.repeat):
                for variant in VARIANTS:  # interleaved, so that drift of the machine hits all alike
                    runs[variant].append(_measure(variant, world))
            _print(rows, runs, args.repeat)
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


def _print(rows: int, runs: dict[str, list[dict[str, float]]], repeat: int) -> None:
    def med(variant: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in runs[variant])

    for variant in ("task", "bare"):
        print(
            f"{rows:>10,} {variant:<6} {med(variant, 'import'):>7.2f} {med(variant, 'read'):>6.2f} "
            f"{med(variant, 'validate'):>9.2f} {med(variant, 'log'):>6.2f} {med(variant, 'total'):>9.2f} "
            f"{med(variant, 'process'):>8.2f} {max(r['peak_mb'] for r in runs[variant]):>8.0f}",
            flush=True,
        )
    task, bare, train = med("task", "process"), med("bare", "process"), med("train", "fit")
    gx, checks = med("task", "validate"), med("bare", "validate")
    print(
        f"{rows:>10,} medians of {repeat}: the whole validate task (fresh process) {task:.2f} s = {task / bare:.1f}x "
        f"the bare validation's process ({bare:.2f} s); validating alone {gx:.2f} s = {gx / checks:.1f}x the pandas "
        f"checks ({checks:.3f} s)"
    )
    print(
        f"{rows:>10,} training the same rows (bare LightGBM fit of retrain.py's floor, split and early stopping "
        f"included): {train:.2f} s; the whole validate task is {100 * task / train:.0f}% of it, its import "
        f"{100 * med('task', 'import') / train:.0f}%",
        flush=True,
    )


def _world(folder: Path, rows: int) -> Path:
    """The frame as one partition, its snapshot, the suite file and a migrated MLflow store (none measured)."""
    from mlflow import MlflowClient

    from airflow_ml.data.snapshot import take_snapshot

    frame = _frame(rows)
    partition = folder / "raw" / "date=2026-01-05"
    partition.mkdir(parents=True)
    frame.to_parquet(partition / "part.parquet", index=False)
    uri = take_snapshot(str(partition.parent), str(folder / "snapshots"), template="bench", city="berlin", run_id="r")
    (folder / "suites").mkdir()
    (folder / "suites" / "bench_trips.json").write_text(json.dumps(SUITE), encoding="utf-8")
    store = f"sqlite:///{folder}/mlflow.db"
    MlflowClient(tracking_uri=store, registry_uri=store).search_experiments()
    (folder / "world.json").write_text(json.dumps({"uri": uri.uri, "store": store}), encoding="utf-8")
    return folder


def _frame(rows: int) -> Any:
    import numpy as np
    import pandas as pd

    from airflow_ml.data.demo import DEMO_START, generate_day

    frames, day, total = [], DEMO_START, 0
    while total < rows:
        frame = generate_day("berlin", day, scale=40)
        frames.append(frame)
        total += len(frame)
        day += dt.timedelta(days=1)
    frame = pd.concat(frames, ignore_index=True).iloc[:rows]
    rng = np.random.default_rng(3)
    frame["fare_eur"] = (3.5 + 1.6 * frame["distance_km"] + rng.normal(0, 1, len(frame))).clip(lower=0)
    frame["payment"] = pd.Series(rng.choice(["card", "cash", "app"], len(frame), p=[0.6, 0.1, 0.3]), dtype="str")
    frame["passengers"] = rng.integers(1, 5, len(frame))
    return frame[COLUMNS]


def _measure(variant: str, world: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", variant, str(world)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ})
    process = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process": process}


def _peak_mb() -> float:
    """This process's own peak resident set (VmHWM), never its parent's."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _child(variant: str, world: Path) -> dict[str, float]:
    paths = json.loads((world / "world.json").read_text(encoding="utf-8"))
    if variant == "task":
        times = _task(world, paths)
    elif variant == "bare":
        times = _bare(paths["uri"])
    else:
        times = {"fit": _train(paths["uri"])}
    return {**times, "total": time.perf_counter() - START, "peak_mb": _peak_mb()}


def _task(world: Path, paths: dict[str, str]) -> dict[str, float]:
    """The step as the operator calls it; its read, GX and logging timed where the step calls them.

    GX is imported up front, where the task pays it (the step imports it on its first check of the suite).
    """
    import great_expectations  # noqa: F401 - the import is what is measured here
    from mlflow import MlflowClient

    from airflow_ml.ml.steps import validate_step
    from airflow_ml.ml.steps.step_settings import ValidationSettings

    imported = time.perf_counter() - START
    spent: dict[str, float] = {"read": 0.0, "validate": 0.0, "log": 0.0}

    def timed(phase: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - start

        return call

    for phase, name in (
        ("validate", "check_suite"),
        ("read", "read_snapshot_schema"),
        ("read", "read_snapshot"),
        ("validate", "run_suite"),
        ("validate", "render_report"),
        ("log", "log_validation"),
        ("log", "write_json"),
        ("log", "write_text"),
    ):
        setattr(validate_step, name, timed(phase, getattr(validate_step, name)))
    settings = ValidationSettings(suite="bench_trips", expectations_dir=str(world / "suites"), experiment="bench")
    found = validate_step.validate(
        paths["uri"],
        settings,
        suite=SUITE,
        suite_path=str(world / "suites" / "bench_trips.json"),
        client=MlflowClient(tracking_uri=paths["store"], registry_uri=paths["store"]),
        artifact_root=f"file://{world}/artifacts",
    )
    if found.verdict.status != "passed" or found.run is None:
        raise SystemExit(f"task: the suite should pass on clean data and be logged:\n{found.verdict.summary()}")
    return {"import": imported, **spent}


def _bare(uri: str) -> dict[str, float]:
    import pandas as pd

    imported = time.perf_counter() - START
    frame = pd.read_parquet(f"{uri}/data.parquet")
    read = time.perf_counter() - START - imported
    start = time.perf_counter()
    if not all(pandas_checks(frame)):
        raise SystemExit("bare: the checks should pass on clean data")
    return {"import": imported, "read": read, "validate": time.perf_counter() - start}


def _train(uri: str) -> float:
    """Seconds of the bare LightGBM fit of benchmarks/retrain.py's floor: sort by time, split, fit, early stopping."""
    import lightgbm  # noqa: F401  (imported before the clock starts: the fit alone is timed)
    import pandas as pd
    from floor_fit import fit_floor  # benchmarks/ is the script's folder, first on sys.path

    from airflow_ml.templates import load_city_file

    config = load_city_file(CITY_FILE, REPO / "dag_templates" / "templates")
    frame = pd.read_parquet(f"{uri}/data.parquet")
    start = time.perf_counter()
    fit_floor(frame, config)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
