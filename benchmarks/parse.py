"""Parse budget: our factory from YAML against the same DAGs written as plain Python, side by side.

For N cities, each variant runs in a fresh process that parses its DAG file with Airflow's DagBag and then
serializes every DAG as the DAG processor does (``DagSerialization.to_dict``); Airflow's own import is
timed apart. The plain-Python variant builds the very same operators and Params from an inline dict per
city, so the difference is the cost of YAML, layering and validation.

    .venv/bin/python benchmarks/parse.py --cities 10 100 1000 --repeat 3
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

REPO = Path(__file__).resolve().parent.parent

# The same DAGs authored in Python: one validated config copied per city, no YAML and no per-city validation.
PLAIN = """
from airflow_ml.factory.builder import build_dag
from airflow_ml.templates.models import CityConfig

BASE = CityConfig.model_validate({base!r})
for index in range({n}):
    leaves = BASE.training.params.model_copy(update={{"num_leaves": 16 + index % 48}})
    training = BASE.training.model_copy(update={{"params": leaves}})
    config = BASE.model_copy(update={{"city": f"city_{{index:04d}}", "training": training}})
    globals()[f"dag_{{index}}"] = build_dag(config, expectations_dir={expectations!r})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cities", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child))
        return
    header = f"{'cities':>7} {'variant':<13} {'airflow s':>9} {'parse s':>8} {'serialize s':>11} {'total s':>8}"
    print(header + f" {'ms/DAG':>7} {'peak MB':>8}")
    for n in args.cities:
        with tempfile.TemporaryDirectory(prefix="airflow-ml-parse-") as tmp:
            folders = _prepare(Path(tmp), n)
            for variant, folder in folders.items():
                runs = [_measure(folder) for _ in range(args.repeat)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                total = med["parse"] + med["serialize"]
                print(
                    f"{n:>7} {variant:<13} {med['airflow']:>9.2f} {med['parse']:>8.2f} {med['serialize']:>11.2f} "
                    f"{total:>8.2f} {1000 * total / n:>7.1f} {max(r['peak_mb'] for r in runs):>8.0f}",
                    flush=True,
                )


def _prepare(root: Path, n: int) -> dict[str, Path]:
    import yaml

    templates = root / "dag_templates"
    (templates / "templates").mkdir(parents=True)
    (templates / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", templates / "templates")
    for index in range(n):
        city = f"city_{index:04d}"
        (templates / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: ride_duration\ntraining:\n  params:\n    num_leaves: {16 + index % 48}\n"
        )
    factory = root / "factory"
    factory.mkdir()
    (factory / "retrain.py").write_text(
        "from airflow_ml.factory import register_dags\n"
        f"register_dags(globals(), templates_root={str(templates)!r}, "
        f"expectations_dir={str(REPO / 'expectations')!r})\n"
    )
    plain = root / "plain"
    plain.mkdir()
    base = {**yaml.safe_load((templates / "templates" / "ride_duration.yaml").read_text()), "city": "city_0000"}
    base["template"] = "ride_duration"
    (plain / "retrain.py").write_text(PLAIN.format(base=base, n=n, expectations=str(REPO / "expectations")))
    return {"factory (YAML)": factory, "plain Python": plain}


def _measure(folder: Path) -> dict[str, float]:
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW_HOME": str(folder / "airflow")}
    cmd = [sys.executable, __file__, "--child", str(folder)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"parse of {folder} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _child(folder: Path) -> None:
    import resource

    start = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    imported = time.perf_counter()
    bag = DagBag(dag_folder=str(folder / "retrain.py"))
    parsed = time.perf_counter()
    if bag.import_errors:
        raise SystemExit(str(bag.import_errors))
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timing = {"airflow": imported - start, "parse": parsed - imported, "serialize": done - parsed, "peak_mb": peak}
    print(json.dumps({**timing, "dags": len(bag.dags)}))


if __name__ == "__main__":
    main()
