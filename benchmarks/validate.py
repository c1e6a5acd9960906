"""Validation speed and memory: our step against GX's defaults and the same checks in vectorised pandas.

For each size, a frame of demo trips with 12 columns is written once; every measurement is a fresh
process that reads it, imports its libraries and warms up on 1,000 rows (GX's one-time import and first
call aside), then validates the whole frame once with a 15-expectation suite:

- pandas floor: the 15 checks as vectorised pandas, the least any tool can do;
- GX defaults: an ephemeral GX Core context handed the whole frame, result format SUMMARY (what a direct
  integration does; GX fingerprints the frame twice);
- our step: ``airflow_ml.validation.runner.run_suite`` (only the named columns, no fingerprint) plus the
  readable summary and the HTML report, as the validate task does besides reading and writing files.

Peak memory is the highest resident set sampled during the validation minus the resident set just
before it. "our step" also trains the city's model on the same frame, for the share validation takes.

    .venv/bin/python benchmarks/validate.py --rows 1000000 5000000 --repeat 3
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
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("pandas floor", "GX defaults", "our step")


def _expect(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": f"expect_{kind}", "kwargs": kwargs}


SUITE = {
    "name": "bench_trips",
    "expectations": [
        _expect("table_row_count_to_be_between", min_value=500),
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
    """The suite's 15 checks, vectorised."""

    def nonnull(column: str, mostly: float = 1.0) -> bool:
        return bool(frame[column].notna().mean() >= mostly)

    def between(column: str, low: float, high: float) -> bool:
        values = frame[column].dropna()
        return bool(((values >= low) & (values <= high)).all())

    return [
        len(frame) >= 500,
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
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]))))
        return
    print(f"{'rows':>10} {'variant':<13} {'seconds':>8} {'rows/s':>12} {'x floor':>8} {'peak MB':>8} {'frame MB':>9}")
    with tempfile.TemporaryDirectory(prefix="airflow-ml-validate-") as tmp:
        for rows in args.rows:
            path = _write_frame(Path(tmp), rows)
            runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
            for _ in range(args.repeat):
                for variant in VARIANTS:  # interleaved, so that drift of the machine hits all alike
                    runs[variant].append(_measure(variant, path))
            floor = statistics.median(r["seconds"] for r in runs["pandas floor"])
            for variant in VARIANTS:
                seconds = statistics.median(r["seconds"] for r in runs[variant])
                peak = statistics.median(r["peak_mb"] for r in runs[variant])
                frame_mb = runs[variant][0]["frame_mb"]
                print(
                    f"{rows:>10,} {variant:<13} {seconds:>8.2f} {rows / seconds:>12,.0f} {seconds / floor:>8.1f} "
                    f"{peak:>8.0f} {frame_mb:>9.0f}",
                    flush=True,
                )
            train = statistics.median(r["train_seconds"] for r in runs["our step"])
            ours = statistics.median(r["seconds"] for r in runs["our step"])
            print(f"{rows:>10,} training the same rows: {train:.1f} s; validation is {100 * ours / train:.0f}% of it")


def _write_frame(folder: Path, rows: int) -> Path:
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
    path = folder / f"trips_{rows}.parquet"
    frame.to_parquet(path, index=False)
    return path


def _measure(variant: str, path: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", variant, str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ})
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakSampler(threading.Thread):
    """Samples the resident set every 5 ms; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.running = _rss_mb(), True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.005)


def _child(variant: str, path: Path) -> dict[str, float]:
    import pandas as pd

    frame = pd.read_parquet(path)
    validate = _validator(variant)
    validate(frame.iloc[:1000].copy())  # warm-up: imports and first-call costs aside
    before = _rss_mb()
    sampler = _PeakSampler()
    sampler.start()
    start = time.perf_counter()
    outcome = validate(frame)
    seconds = time.perf_counter() - start
    sampler.running = False
    sampler.join()
    if outcome is not True:
        raise SystemExit(f"{variant}: the suite should pass on clean data, got {outcome!r}")
    result = {
        "seconds": seconds,
        "peak_mb": max(sampler.peak, _rss_mb()) - before,
        "frame_mb": frame.memory_usage(deep=True).sum() / 2**20,
    }
    if variant == "our step":
        result["train_seconds"] = _train(frame)
    return result


def _validator(variant: str) -> Any:
    if variant == "pandas floor":
        return lambda frame: all(pandas_checks(frame))
    if variant == "GX defaults":
        import great_expectations as gx

        def gx_defaults(frame: Any) -> bool:
            context = gx.get_context(mode="ephemeral")
            batch = (
                context.data_sources.add_pandas("p")
                .add_dataframe_asset("a")
                .add_batch_definition_whole_dataframe("b")
                .get_batch(batch_parameters={"dataframe": frame})
            )
            suite = gx.ExpectationSuite(name="s", expectations=[dict(e) for e in SUITE["expectations"]])
            return bool(batch.validate(suite, result_format="SUMMARY").success)

        return gx_defaults
    from airflow_ml.validation.report import render_report
    from airflow_ml.validation.runner import run_suite

    def our_step(frame: Any) -> bool:
        verdict, result = run_suite(frame, SUITE, suite_file="bench_trips.json")
        verdict.summary()
        render_report(verdict.to_dict(), result, title="bench")
        json.dumps(result, default=str)
        return verdict.status == "passed"

    return our_step


def _train(frame: Any) -> float:
    from airflow_ml.ml.train import TrainSpec, time_split, train_model
    from airflow_ml.templates import load_city_file

    config = load_city_file(REPO / "dag_templates" / "cities" / "berlin.yaml", REPO / "dag_templates" / "templates")
    spec = TrainSpec(
        features=list(config.dataset.features),
        categorical=list(config.dataset.categorical_features),
        target=config.dataset.target,
        num_boost_round=config.training.num_boost_round,
        early_stopping_rounds=config.training.early_stopping_rounds,
        params=config.training.params.model_dump(),
    )
    start = time.perf_counter()
    split = config.split
    train_model(time_split(frame, config.dataset.time_column, split.validation_fraction, split.holdout_fraction), spec)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
