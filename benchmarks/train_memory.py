"""The train task's peak memory against the in-memory size of the frame it trains on (issue 16's P4: at most 3x).

**The world** (fresh temporary folder, fixed seeds): São Paulo's demo trips scaled to ``--rows`` rows, the
city's settings as the factory builds them from ``dag_templates/templates/ride_duration.yaml`` (a city file
with no window, as ``retrain.py``), the run's snapshot taken by the snapshot step and an MLflow store in SQLite.

**Measured**, each repeat a fresh process: ``train_step.train``, the function ``TrainOperator`` calls (read the
snapshot, split, fit, score, log the run, its lineage, charts and model). Before it starts, the child imports
what the task imports (lazy imports included: pyarrow, matplotlib), opens the store, then starts its peak over
(``clear_refs``) and reads its size: the baseline. After the task it reads its own peak (``VmHWM``, see
``peak_memory.py``). The frame's size is pandas' ``memory_usage(deep=True)`` of the columns the task reads.

``--code`` runs the children on other source trees (their ``airflow_ml`` first on ``PYTHONPATH``), alternating
with each repeat, on the same world: before and after a change, side by side (``git archive`` a commit).

    .venv/bin/python benchmarks/train_memory.py --rows 1000000 --repeat 3

Prints, per code tree and as medians: the frame's MB, the baseline, the peak over the baseline, the peak's ratio
to the frame against the goal of 3x, the task's seconds, its CPU seconds and the holdout metric it logged (the
same model on every code tree gives the same figure); then the load average.
"""

from __future__ import annotations

import argparse
import gc
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

from peak_memory import peak_rss_mb, reset_peak, rss_mb  # benchmarks/ is the script's folder, first on sys.path

REPO = Path(__file__).resolve().parent.parent
CITY = "sao_paulo"
# sao_paulo writes about 1,990 trips a day at scale 1 over the 60 days of the initial batch.
ROWS_PER_SCALE = 119_500
GOAL = 3.0
COLUMNS = (
    f"{'code':<12} {'rows':>10} {'frame MB':>9} {'base MB':>8} {'peak-base':>10} {'x frame':>8} {'goal':>5} "
    f"{'train s':>8} {'cpu s':>7} {'holdout':>9}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per code tree (median)")
    parser.add_argument("--code", nargs="+", type=Path, default=[REPO], help="source trees to compare")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _run_child(Path(args.child))
        return
    loads = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="airflow-ml-bench-train-") as tmp:
        started = time.perf_counter()
        world = _prepare(Path(tmp), args.rows)
        meta = json.loads((world / "world.json").read_text(encoding="utf-8"))
        print(f"world written in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        runs: dict[Path, list[dict[str, float]]] = {code: [] for code in args.code}
        for repeat in range(args.repeat):
            for code in args.code:
                runs[code].append(_measure(world, code.resolve()))
            print(f"  repeat {repeat + 1}/{args.repeat} done", file=sys.stderr, flush=True)
    print(COLUMNS)
    for code, measured in runs.items():
        _print_row(code, meta, measured)
    print(f"\nload average (1, 5, 15 min) at the start {_fmt(loads)}, at the end {_fmt(os.getloadavg())}")


def _fmt(loads: tuple[float, ...]) -> str:
    return ", ".join(f"{x:.2f}" for x in loads)


def _print_row(code: Path, meta: dict[str, Any], runs: list[dict[str, float]]) -> None:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    frame_mb = meta["frame_mb"]
    over = median("peak_mb") - median("base_mb")
    name = "this tree" if code.resolve() == REPO else code.name
    print(
        f"{name:<12} {meta['rows']:>10,} {frame_mb:>9.1f} {median('base_mb'):>8.0f} {over:>10.0f} "
        f"{over / frame_mb:>8.2f} {GOAL:>5.1f} {median('seconds'):>8.2f} {median('cpu'):>7.2f} "
        f"{median('holdout'):>9.5f}",
        flush=True,
    )


def _prepare(root: Path, rows: int) -> Path:
    """The world: demo trips, the city's settings from its YAML, the snapshot and the frame's size."""
    from airflow_ml.data.demo import write_demo_data
    from airflow_ml.data.snapshot import read_snapshot
    from airflow_ml.factory.tasks import task_settings
    from airflow_ml.ml.steps.snapshot_step import snapshot, sources
    from airflow_ml.templates import load_city_file

    (root / "templates").mkdir()
    (root / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", root / "templates")
    city_file = root / "cities" / f"{CITY}.yaml"
    city_file.write_text(f"city: {CITY}\ntemplate: ride_duration\ndataset:\n  window_days: null\n", encoding="utf-8")
    write_demo_data(root / "data", cities=[CITY], batch="initial", scale=rows / ROWS_PER_SCALE)
    settings = task_settings(load_city_file(city_file, root / "templates"), expectations_dir=REPO / "expectations")
    data_root = str(root / "data")
    manifest = snapshot(settings.snapshot, sources(settings.snapshot, data_root), data_root=data_root, run_id="bench")
    spec, split = settings.training.spec, settings.training.split
    # The columns train_step reads, in its order.
    columns = list(dict.fromkeys([*spec.features, spec.target, split.time_column]))
    frame = read_snapshot(manifest.uri, columns=columns)
    meta = {
        "rows": len(frame),
        "frame_mb": float(frame.memory_usage(deep=True).sum()) / 2**20,
        "snapshot": manifest.uri,
        "settings": settings.training.to_dict(),
        "store": f"sqlite:///{root}/mlflow.db",
        "artifacts": f"file://{root}/artifacts",
    }
    (root / "world.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def _measure(world: Path, code: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
    }
    cmd = [sys.executable, __file__, "--child", str(world)]
    done = subprocess.run(cmd, env=env, cwd=world, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"train run on {code} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _run_child(world: Path) -> None:
    """One train task in this process; prints its baseline, peak, seconds and CPU as JSON."""
    import matplotlib.figure  # noqa: F401 - the task's lazy imports, imported before the baseline
    import pyarrow.parquet  # noqa: F401
    from mlflow import MlflowClient

    from airflow_ml.data.snapshot import load_manifest
    from airflow_ml.ml.charts import chart_drawing, holdout_charts  # noqa: F401
    from airflow_ml.ml.steps.step_settings import TrainingSettings
    from airflow_ml.ml.steps.train_step import train

    meta = json.loads((world / "world.json").read_text(encoding="utf-8"))
    client = MlflowClient(tracking_uri=meta["store"], registry_uri=meta["store"])
    client.search_experiments()  # the store is created (and migrated) before the baseline
    settings = TrainingSettings.from_dict(meta["settings"])
    manifest = load_manifest(meta["snapshot"])
    gc.collect()
    reset_peak()
    base = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    result = train(client, manifest, settings, run_id=f"bench-{os.getpid()}", artifact_root=meta["artifacts"])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    holdout = result["metrics"][f"holdout_{settings.spec.metric}"]
    print(json.dumps({"base_mb": base, "peak_mb": peak_rss_mb(), "seconds": seconds, "cpu": cpu, "holdout": holdout}))


if __name__ == "__main__":
    main()
