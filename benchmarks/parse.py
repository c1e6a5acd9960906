"""Parse budget: our factory from YAML against plain Python and dag-factory 1.1, side by side in one run.

For N cities, each DAG file is parsed in a fresh process with Airflow's DagBag, then every DAG is
serialized as the DAG processor does (``DagSerialization.to_dict``); Airflow's own import is timed apart
(the processor forks its file processes from a parent that has imported Airflow).

- factory: a fleet generated in a temporary folder: N city files over the demo template, and every file of
  ``dags/``, with as many shard files (each builds its cities' retraining and scoring DAGs) as ``--shards``
  says (by default ``shard_count(N)`` of ``airflow_ml.factory.sharding``: one per ``CITIES_PER_SHARD`` cities,
  at least 2). Each file is its own measurement: the table shows their sum and the slowest file, and the
  lines under it each file's time and CPU (where the time goes).
- plain Python: the same retraining DAGs written by hand the way Airflow's docs show: ``DAG(params=...)``
  with the operators inside, a loop over the cities, split across as many files as the factory has retrain
  shard files (the same cities in each), so that "slowest file" compares like with like; once with a single
  Param (the reference of the goal), once with the same full form. A third plain variant, ``+ scoring``,
  builds each city's scoring DAG (resolve → score, as the factory's) beside its retraining DAG with one
  Param: the same DAGs as the factory's shard files, so that the totals compare like with like (*dags* is
  the number of DAGs a variant's files build). What the plain variants leave out of the factory's DAGs: the
  health check's champion Asset outlet, each DAG's description and display name, the template's own
  ``default_args`` (fixed ones instead) and each city's own settings (city 0's, with ``num_leaves`` varied).
- dag-factory 1.1: the same DAGs from equivalent YAML files, split the same way (Param objects through
  ``__type__``; XCom inputs as Jinja pulls), with the same full form. It runs from a side venv layered over
  the project's, so its Airflow plugin never enters the project's environment.

*cpu s* is the user and system CPU of parsing and serializing, summed over the files: it moves less than the
wall times when other work shares the machine. *margin s* is Airflow's per-file import timeout
(``[core] dagbag_import_timeout``, 30 s by default; it bounds the import, not the serialization) less the
slowest file's import. ``--contention on`` (or ``both``) measures again with a competing busy process per core,
as on a loaded machine; *load* is the 1-minute load average when the measurements under that condition ended.
The variants are measured round-robin (each repeat measures every variant in turn), so that a machine whose speed
drifts over minutes weighs on all of them alike.

Task start-up: a process that parses the file of one DAG with Airflow's parsing context set, as a worker
does before it runs a task.

    .venv/bin/python benchmarks/parse.py --cities 10 100 1000 --repeat 3
    .venv/bin/python benchmarks/parse.py --cities 10000 --repeat 3 --only plain --contention both
    .venv/bin/python benchmarks/parse.py --cities 1000 --repeat 1 --only plain   # a quick A/B of two trees
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
#: The files of dags/ that build the DAGs of the cities of their shard: the generated fleet has ``--shards`` of them.
SHARDED = "retrain_shard"
#: Airflow's default ``[core] dagbag_import_timeout``: the import of one DAG file, in seconds.
IMPORT_TIMEOUT = 30.0
DAG_FACTORY = "dag-factory==1.1.0"
#: The goal's reference: plain Python building each city's retraining DAG, with one Param.
PLAIN_ONE_PARAM = "plain Python, 1 Param"
#: Like for like with the factory's shard files: plain Python building each city's retraining and scoring DAGs.
PLAIN_BOTH_KINDS = "plain Python, 1 Param, + scoring"

PLAIN = """
import datetime
import datetime as dt
import importlib

from airflow.sdk import DAG, Param

SPECS = {specs!r}
PARAMS = {params!r}


def _operator(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


for index, city in {cities!r}:
    for spec in SPECS:
        with DAG(
            dag_id=f"ride_duration.{{city}}{{spec['suffix']}}",
            schedule=spec["schedule"],
            start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
            catchup=False,
            max_active_runs=1,
            tags=[*spec["tags"], f"city:{{city}}"],
            default_args={{"owner": "ml-platform", "retries": 2, "retry_delay": dt.timedelta(minutes=5)}},
            doc_md=spec["doc_md"],
            params={{name: Param(value, description=text, **schema) for name, (value, text, schema) in PARAMS.items()}}
            if spec["params"]
            else None,
        ) as dag:
            tasks = {{}}
            for task_id, path, kwargs in spec["tasks"]:
                kwargs = {{k: tasks[v[1]].output if isinstance(v, tuple) else v for k, v in kwargs.items()}}
                if task_id == "train":
                    model = kwargs["settings"]["spec"]  # the LightGBM parameters differ from city to city
                    model = {{**model, "params": {{**model["params"], "num_leaves": 16 + index % 48}}}}
                    kwargs["settings"] = {{**kwargs["settings"], "spec": model}}
                tasks[task_id] = _operator(path)(task_id=task_id, **kwargs)
            for upstream, downstream in zip(spec["order"], spec["order"][1:]):
                tasks[upstream] >> tasks[downstream]
        globals()[f"dag_{{index}}{{spec['suffix'].replace('.', '_')}}"] = dag
"""

DAG_FACTORY_LOADER = """
from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), config_filepath={path!r})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cities", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--shards",
        type=int,
        help="shard files of the fleet (default: shard_count of airflow_ml.factory.sharding, at least 2)",
    )
    parser.add_argument(
        "--reports",
        type=int,
        help="report files of broken cities (default: report_count of airflow_ml.factory.sharding, one per "
        "CITIES_PER_REPORT cities); past one, retrain_errors.py is replaced by retrain_errors_<i>.py",
    )
    parser.add_argument(
        "--only",
        choices=["factory", "plain"],
        help="measure only the factory (and task start-up), or the factory and the two plain references with one "
        "Param (retraining DAGs; retraining and scoring DAGs): for a quick A/B of two trees; the table's rows are "
        "those of a full run",
    )
    parser.add_argument(
        "--contention",
        choices=["off", "on", "both"],
        default="off",
        help="with a competing busy process per core (on), or each variant both without and with them",
    )
    parser.add_argument("--child", nargs=2, metavar=("FILE", "AIRFLOW_HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]))
        return
    side_python = None if args.only else _dag_factory_python()
    conditions = {"off": [False], "on": [True], "both": [False, True]}[args.contention]
    cores = os.cpu_count() or 1
    print(f"{cores} cores, load average {_load():.2f} at the start; median of {args.repeat} fresh processes per file")
    print(
        f"{'cities':>7} {'cpu hogs':>8} {'variant':<42} {'dags':>6} {'airflow s':>9} {'parse s':>8} "
        f"{'serialize s':>11} {'total s':>8} {'slowest file s':>14} {'margin s':>8} {'cpu s':>7} {'ms/city':>7} "
        f"{'peak MB':>8} {'load':>5}"
    )
    details: list[str] = []
    totals: dict[tuple[int, int, str], float] = {}
    startup: dict[tuple[int, bool], float] = {}
    for n in args.cities:
        shards = args.shards or _default_shards(n)
        with tempfile.TemporaryDirectory(prefix="airflow-ml-parse-") as tmp:
            variants = _prepare(Path(tmp), n, shards, dag_factory=not args.only, reports=args.reports)
            chosen = {
                name: found
                for name, found in variants.items()
                if not args.only or name.startswith("factory") or (args.only == "plain" and "1 Param" in name)
            }
            for contended in conditions:
                hogs = cores if contended else 0
                # Round-robin: each repeat measures every variant, so that a machine whose speed drifts over
                # minutes (a shared VM) weighs on all variants alike rather than on the one measured then.
                rows: dict[str, list[list[dict[str, float]]]] = {name: [] for name in chosen}
                with _contention(hogs):
                    for _ in range(args.repeat):
                        for name, (files, python) in chosen.items():
                            rows[name].append([_measure(f, python or side_python) for f in files])
                    load = _load()
                for name, (files, _) in chosen.items():
                    totals[n, hogs, name.rsplit(",", 1)[0]] = _report(n, hogs, name, rows[name], load)
                    if name.startswith("factory"):
                        details.append(_per_file(n, hogs, files, rows[name]))
            start_file = Path(tmp) / "factory" / "dags" / f"retrain_shard_{_shard_of(_city(0, n), shards)}.py"
            for contended in conditions:
                with _contention(cores if contended else 0):
                    startup[n, contended] = statistics.median(
                        _measure(start_file, None, _city(0, n))["parse"] for _ in range(args.repeat)
                    )
    for line in [*details, *_ratios(totals)]:
        print(line)
    for (n, contended), seconds in startup.items():
        hogs = f", {cores} cpu hogs" if contended else ""
        print(f"task start-up, {n:>6} cities{hogs}: {1000 * seconds:7.0f} ms to parse the DAG file for one task")


def _ratios(totals: dict[tuple[int, int, str], float]) -> list[str]:
    """The factory's total over each plain reference's of the same fleet and load (the goal's and like for like)."""
    lines = []
    for (n, hogs, name), factory in totals.items():
        if not name.startswith("factory"):
            continue
        for reference in (PLAIN_ONE_PARAM, PLAIN_BOTH_KINDS):
            if (n, hogs, reference) in totals:
                ratio = factory / totals[n, hogs, reference]
                lines.append(f"factory / {reference}, {n} cities, {hogs} cpu hogs: {ratio:.2f}")
    return lines


def _report(n: int, hogs: int, name: str, rows: list[list[dict[str, float]]], load: float) -> float:
    """Print the variant's row of the table; its total (parse and serialize, summed over its files)."""

    # Each row is one repeat: one measurement per DAG file of the variant.
    def median_of(key: str) -> float:
        return statistics.median(sum(m[key] for m in row) for row in rows)

    total = median_of("parse") + median_of("serialize")
    slowest = statistics.median(max(m["parse"] + m["serialize"] for m in row) for row in rows)
    slowest_import = statistics.median(max(m["parse"] for m in row) for row in rows)
    airflow = statistics.median(m["airflow"] for row in rows for m in row)
    peak = max(m["peak_mb"] for row in rows for m in row)
    dags = sum(m["dags"] for m in rows[0])
    print(
        f"{n:>7} {hogs:>8} {name:<42} {dags:>6} {airflow:>9.2f} {median_of('parse'):>8.2f} "
        f"{median_of('serialize'):>11.2f} {total:>8.2f} {slowest:>14.2f} {IMPORT_TIMEOUT - slowest_import:>8.2f} "
        f"{median_of('cpu'):>7.2f} {1000 * total / n:>7.2f} {peak:>8.0f} {load:>5.2f}",
        flush=True,
    )
    return total


def _per_file(n: int, hogs: int, files: list[Path], rows: list[list[dict[str, float]]]) -> str:
    """Each factory file's median parse + serialize (and how many DAGs it built): where the time goes."""
    parts = []
    for index, path in enumerate(files):
        seconds = statistics.median(row[index]["parse"] + row[index]["serialize"] for row in rows)
        cpu = statistics.median(row[index]["cpu"] for row in rows)
        parts.append(f"{path.stem} {seconds:.2f} s, {cpu:.2f} s cpu ({int(rows[0][index]['dags'])} DAGs)")
    return f"factory files, {n} cities, {hogs} cpu hogs: " + ", ".join(parts)


def _load() -> float:
    return os.getloadavg()[0]


@contextlib.contextmanager
def _contention(processes: int) -> Iterator[None]:
    """``processes`` busy Python loops competing for the CPU while the block runs (none for 0)."""
    # Each loop ends by itself once this process is gone (killed by a timeout, say): its parent changes.
    loop = f"import os\nwhile os.getppid() == {os.getpid()}: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", loop], stdin=subprocess.DEVNULL) for _ in range(processes)]
    try:
        if hogs:
            time.sleep(1.0)  # the loops are running before the first measurement starts
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _city(index: int, n: int) -> str:
    return f"city_{index:0{max(4, len(str(n - 1)))}d}"


def _default_shards(cities: int) -> int:
    # Imported here: the --child processes time Airflow's import, which importing airflow_ml.factory would do first.
    from airflow_ml.factory.sharding import shard_count

    return shard_count(cities)


def _default_reports(cities: int) -> int:
    from airflow_ml.factory.sharding import report_count

    return report_count(cities)


#: What _split_report replaces in the copied dags/retrain_errors.py: its import and its call.
REPORT_IMPORT = "from airflow_ml.factory import report_broken_cities\n"
REPORT_CALL = 'report_broken_cities(templates_root=Path(__file__).resolve().parent.parent / "dag_templates")'


def _split_report(dags: Path, count: int) -> None:
    """Replace ``dags/retrain_errors.py`` by ``count`` report files, one per shard, when ``count`` is more than one."""
    if count <= 1:
        return
    whole = dags / "retrain_errors.py"
    text = whole.read_text()
    for needed in (REPORT_IMPORT, REPORT_CALL):
        if needed not in text:
            raise SystemExit(f"dags/retrain_errors.py no longer holds {needed.strip()!r}: update benchmarks/parse.py")
    whole.unlink()
    text = text.replace(
        REPORT_IMPORT, REPORT_IMPORT.replace("import report_broken_cities", "import Shard, report_broken_cities")
    )
    for index in range(count):
        call = f"{REPORT_CALL[:-1]}, shard=Shard({index}, {count}))"
        (dags / f"retrain_errors_{index}.py").write_text(text.replace(REPORT_CALL, call))


def _shard_of(city: str, count: int) -> int:
    from airflow_ml.factory import Shard

    return next(index for index in range(count) if Shard(index, count).holds(city))


def _prepare(
    root: Path, n: int, shards: int, *, dag_factory: bool, reports: int | None = None
) -> dict[str, tuple[list[Path], str | None]]:
    """The fleet of every variant under ``root``: the factory's is ``dags/`` with its own templates folder.

    ``reports`` report files of broken cities (by default ``report_count(n)``): past one, the copied
    ``retrain_errors.py`` is replaced by ``retrain_errors_<i>.py``, each reporting its shard, as
    docs/production/scaling.md says a fleet past ``CITIES_PER_REPORT`` cities does.
    """
    fleet = root / "factory"
    templates = fleet / "dag_templates"
    (templates / "templates").mkdir(parents=True)
    (templates / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", templates / "templates")
    shutil.copytree(REPO / "expectations", fleet / "expectations")
    cities = [(index, _city(index, n)) for index in range(n)]
    for index, city in cities:
        (templates / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: ride_duration\ntraining:\n  params:\n    num_leaves: {16 + index % 48}\n"
        )
    # Every file of dags/, reading the fleet's folders (each finds dag_templates/ next to its own folder).
    dags = fleet / "dags"
    dags.mkdir()
    for path in sorted((REPO / "dags").glob("*.py")):
        if not path.stem.startswith(SHARDED):
            shutil.copy(path, dags)
    _split_report(dags, reports if reports is not None else _default_reports(n))
    text = (REPO / "dags" / f"{SHARDED}_0.py").read_text()
    count = len(list((REPO / "dags").glob(f"{SHARDED}_*.py")))
    if f"Shard(0, {count})" not in text:
        raise SystemExit(f"dags/{SHARDED}_0.py names no Shard(0, {count}): update benchmarks/parse.py")
    for index in range(shards):
        (dags / f"{SHARDED}_{index}.py").write_text(text.replace(f"Shard(0, {count})", f"Shard({index}, {shards})"))

    by_shard = [[(i, c) for i, c in cities if _shard_of(c, shards) == index] for index in range(shards)]
    spec, scoring, params = _spec(templates)
    one_param = {"reason": params["reason"]}
    variants: dict[str, tuple[list[Path], str | None]] = {
        f"factory, full form, {len(list(dags.glob('*.py')))} files": (sorted(dags.glob("*.py")), sys.executable)
    }
    plain = (
        (PLAIN_ONE_PARAM, [spec], one_param),
        (PLAIN_BOTH_KINDS, [spec, scoring], one_param),
        ("plain Python, full form", [spec], params),
    )
    for name, specs, chosen in plain:
        folder = root / name.replace(" ", "_").replace(",", "").replace("+", "and")
        folder.mkdir()
        for index, members in enumerate(by_shard):
            (folder / f"retrain_{index}.py").write_text(PLAIN.format(specs=specs, params=chosen, cities=members))
        variants[f"{name}, {shards} files"] = (sorted(folder.glob("*.py")), sys.executable)
    if not dag_factory:  # its YAML takes minutes to write at 10,000 cities: only when it is measured
        return variants
    folder = root / "dag_factory"
    folder.mkdir()
    for index, members in enumerate(by_shard):
        (folder / f"cities_{index}.yml").write_text(_dag_factory_yaml(spec, params, members))
        (folder / f"retrain_{index}.py").write_text(DAG_FACTORY_LOADER.format(path=str(folder / f"cities_{index}.yml")))
    variants[f"dag-factory 1.1, full form, {shards} files"] = (sorted(folder.glob("*.py")), None)
    return variants


def _spec(templates: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, tuple[Any, str, dict[str, Any]]]]:
    """One city's retraining and scoring DAGs as the factory builds them, as plain data the other variants rebuild:
    the specs of both DAGs and the retraining DAG's Params."""
    from airflow_ml.factory import build_dag
    from airflow_ml.factory.params import trigger_params
    from airflow_ml.factory.score_dags import SUFFIX, build_score_dag, scores
    from airflow_ml.templates import load_city_file

    config = load_city_file(sorted((templates / "cities").glob("*.yaml"))[0], templates / "templates")
    if not scores(config):
        raise SystemExit("the demo template has no scoring: section: update benchmarks/parse.py")
    retraining = _dag_spec(build_dag(config, expectations_dir=REPO / "expectations"), "", params=True)
    scoring = _dag_spec(build_score_dag(config), SUFFIX, params=False)
    params = {name: (p.value, p.description, p.schema) for name, p in trigger_params(config).items()}
    return retraining, scoring, params


def _dag_spec(dag: Any, suffix: str, *, params: bool) -> dict[str, Any]:
    """The operators, kwargs, schedule, tags and documentation of one factory-built DAG, as plain data."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    tasks = []
    for task in dag.topological_sort():
        # The arguments of the signatures of the operator and of its airflow_ml bases (what the factory passed),
        # not those Airflow's base classes received from them.
        own = {
            name
            for cls in type(task).__mro__
            if cls.__module__.startswith("airflow_ml.") and "__init__" in vars(cls)
            for name in inspect.signature(cls.__init__).parameters
        } - {"self", "kwargs"}
        kwargs = {
            k: ("xcom", v.operator.task_id) if isinstance(v, XComArg) else v
            for k, v in task._BaseOperator__init_kwargs.items()
            if k in own
        }
        tasks.append((task.task_id, f"{type(task).__module__}.{type(task).__name__}", kwargs))
    timetable = dag.timetable
    if type(timetable).__name__ != "CronTriggerTimetable":
        raise SystemExit(f"{dag.dag_id}: schedule {timetable!r} is not a cron: update benchmarks/parse.py")
    return {
        "suffix": suffix,
        "schedule": timetable.expression,
        "doc_md": dag.doc_md,
        "tags": sorted(tag for tag in dag.tags if not tag.startswith("city:")),
        "params": params,
        "tasks": tasks,
        "order": [t.task_id for t in dag.topological_sort()],
    }


def _dag_factory_yaml(
    spec: dict[str, Any], params: dict[str, tuple[Any, str, dict[str, Any]]], cities: list[tuple[int, str]]
) -> str:
    import yaml

    typed = {
        name: {"__type__": "airflow.sdk.Param", "__args__": [value], "description": text, **schema}
        for name, (value, text, schema) in params.items()
    }
    dags: dict[str, Any] = {}
    for index, city in cities:
        tasks = {}
        for position, (task_id, path, kwargs) in enumerate(spec["tasks"]):
            args = {k: _yaml_value(v) for k, v in kwargs.items()}
            if task_id == "train":  # the LightGBM parameters differ from city to city
                model = args["settings"]["spec"]
                model = {**model, "params": {**model["params"], "num_leaves": 16 + index % 48}}
                args["settings"] = {**args["settings"], "spec": model}
            tasks[task_id] = {"operator": path, **args}
            if position:
                tasks[task_id]["dependencies"] = [spec["tasks"][position - 1][0]]
        dags[f"ride_duration.{city}"] = {
            "schedule": spec["schedule"],
            "start_date": "2026-01-01",
            "catchup": False,
            "max_active_runs": 1,
            "tags": ["airflow-ml", "ride_duration", f"city:{city}"],
            "default_args": {"owner": "ml-platform", "retries": 2, "retry_delay_sec": 300},
            "doc_md": spec["doc_md"],
            "params": typed,
            "tasks": tasks,
        }
    return yaml.safe_dump(dags, sort_keys=False)


def _yaml_value(value: Any) -> Any:
    """An operator argument as dag-factory YAML: XCom inputs as Jinja pulls, timedeltas through ``__type__``."""
    import datetime as dt

    if isinstance(value, tuple):
        return f"{{{{ ti.xcom_pull(task_ids='{value[1]}') }}}}"
    if isinstance(value, dt.timedelta):
        return {"__type__": "datetime.timedelta", "seconds": value.total_seconds()}
    return value


def _dag_factory_python() -> str:
    """A venv layered over the project's (a .pth file) with only dag-factory added, built once."""
    import site

    venv = OUT / "dag-factory-venv"
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)  # type: ignore[attr-defined]
        inner = subprocess.run(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True
        ).stdout.strip()
        # An ``import`` line, so that the project's own .pth files (its editable install) are processed too.
        project = site.getsitepackages()[0]
        Path(inner, "airflow_ml_project.pth").write_text(f"import site; site.addsitedir({project!r})\n")
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check", DAG_FACTORY],
            check=True,
        )
        (venv / ".ready").touch()
    return str(python)


def _measure(dag_file: Path, python: str | None, task_city: str | None = None) -> dict[str, float]:
    env = {
        **os.environ,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_HOME": str(dag_file.parent / "airflow"),
        "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
        "SCARF_NO_ANALYTICS": "true",
        "DO_NOT_TRACK": "1",
        # No per-file timeout (Airflow's default is 30 s): a slow variant is measured, not cut off, and the
        # table shows which ones would meet that timeout.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0",
    }
    if task_city:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = f"ride_duration.{task_city}"
    cmd = [python or sys.executable, __file__, "--child", str(dag_file), env["AIRFLOW_HOME"]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"parse of {dag_file} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if task_city and result["dags"] != 1:
        raise SystemExit(f"a task process built {result['dags']} DAGs from {dag_file}, expected 1")
    return result


def _child(dag_file: Path) -> None:
    import resource

    start = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    imported = time.perf_counter()
    cpu_start = _cpu_seconds()
    bag = DagBag(dag_folder=str(dag_file))
    parsed = time.perf_counter()
    if bag.import_errors:
        raise SystemExit(str(bag.import_errors))
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    done = time.perf_counter()
    cpu = _cpu_seconds() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timing = {
        "airflow": imported - start,
        "parse": parsed - imported,
        "serialize": done - parsed,
        "cpu": cpu,
        "peak_mb": peak,
    }
    print(json.dumps({**timing, "dags": len(bag.dags)}))


def _cpu_seconds() -> float:
    # User and system CPU of this process: what the parse costs, less sensitive than wall time to other load.
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
