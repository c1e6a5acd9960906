"""Scoring: the batch score task against a bare script, and the HTTP server against the model called in-process.

**Batch** (``--rows``): one city's day of N demo trips (``date=`` partition, parquet) and a real LightGBM model,
trained with the template's settings and logged and registered as training does (``train_model``, ``log_model``,
``register_challenger``), in a real MLflow SQLite registry, ``champion`` alias set. The *task* is what
``ScoreOperator`` runs: ``score_step.resolve`` (kill switch, ``which_model_serves``, the challenger) then
``score_step.score`` (read the partition, hash it, load the version, predict, prediction ids, write the log's
partition), with ``key_columns: [trip_id]`` and ``keep_columns: [pickup_zone]`` as the scoring guide shows. The
*bare script* loads the same version with ``mlflow.pyfunc.load_model``, reads the same partition, calls
``predict`` on the same frame and writes the same rows but the id and the input hash with ``to_parquet``. Each
measurement is a fresh process (imports included), task and bare script alternating; each also reports its work
after its imports. Repeats do the same work: a rerun of the day replaces the partition. Then one process times
the task's parts apart (where its extra time goes).

**HTTP** (``--cities``): the real app (``create_app`` with a real ``ModelCache``, ``max_models`` = the number of
cities) served by uvicorn in a subprocess on a free port; each city's model is the batch model logged and
registered under the city's name. p50 and p99 latency of 1-row and 100-row requests (httpx, keep-alive, one
client, a warm cache) against ``predict`` of the loaded pyfunc in this process on the same rows; requests per
second with ``--clients`` threads; the server's resident memory with no model, one, and every city's model
loaded (each city's first request loads it).

**Monitor** (``--monitor-cities``): each city's champion (the batch model, registered under the city's name with
its holdout score tagged as the gate tags it), a prediction log of ``--windows`` days of ``--labels`` rows each
(``write_predictions``, key ``trip_id``) and the labels of the same rows as day partitions; then
``monitor_step.monitor_city`` for every city, one after the other in this process, as the monitor DAG's mapped
tasks call it (join, live metric per daily window with a 1,000-resample bootstrap, one MLflow run per window,
the supervisor in mode ``alert``), twice: the first run, and a rerun that finds the windows' MLflow runs.

    .venv/bin/python benchmarks/score.py --rows 1000000 --cities 100 --repeat 3

Prints seconds (median), the ratio task/bare, the task's parts, then the HTTP table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from peak_memory import peak_rss_mb  # benchmarks/ is the script's folder, first on sys.path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "ride_duration"
CITY = "sao_paulo"
MODEL = f"{TEMPLATE}.{CITY}"
#: The day scored: one of the demo's "initial" days; the model trains on the days before it.
DAY = dt.date(2026, 2, 20)
TRAIN_DAYS = 20
KEY = "trip_id"
KEEP = "pickup_zone"
CITY_YAML = f"""city: {CITY}
template: {TEMPLATE}
dataset:
  extra_columns: [{KEY}]
scoring:
  source: "{{data_root}}/raw/trips/{{city}}"
  key_columns: [{KEY}]
  keep_columns: [{KEEP}]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the day scored (0: no batch figures)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes of each kind (median)")
    parser.add_argument("--cities", type=int, default=100, help="cities' models the server caches (0: no HTTP)")
    parser.add_argument("--requests", type=int, default=500, help="timed requests of each size, per measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads for requests per second")
    parser.add_argument("--monitor-cities", type=int, default=100, help="cities of the monitor run (0: none)")
    parser.add_argument("--windows", type=int, default=30, help="daily windows each city's monitor evaluates")
    parser.add_argument("--labels", type=int, default=300, help="labelled rows per city and day")
    parser.add_argument("--child", choices=("task", "bare", "parts", "serve"), help=argparse.SUPPRESS)
    parser.add_argument("--world", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _CHILDREN[args.child](Path(args.world), args)
        return
    os.environ.update(
        {k: v for k, v in _env(Path()).items() if k not in ("MLFLOW_TRACKING_URI", "AIRFLOW_ML_DATA_ROOT")}
    )
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    loads = _load()
    with tempfile.TemporaryDirectory(prefix="airflow-ml-bench-score-") as tmp:
        world = _prepare(Path(tmp), args.rows or 2_000)
        if args.rows:
            _batch(world, args.repeat)
        if args.cities:
            _http(world, args.cities, args.requests, args.clients)
        if args.monitor_cities:
            _monitor(world, args.monitor_cities, args.windows, args.labels)
    print(f"\nload average (1, 5, 15 min) at the start {loads}, at the end {_load()}")


# --- the world: a day to score, a model trained and registered as training does ---


def _prepare(root: Path, rows: int) -> Path:
    import pandas as pd
    from mlflow import MlflowClient

    from airflow_ml.data.demo import generate_day
    from airflow_ml.factory.score_dags import scoring_settings
    from airflow_ml.factory.tasks import task_settings
    from airflow_ml.ml.model_registry import get_or_create_experiment, log_model, register_challenger
    from airflow_ml.ml.train import time_split, train_model
    from airflow_ml.templates import load_city_file

    (root / "templates").mkdir()
    (root / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / f"{TEMPLATE}.yaml", root / "templates")
    (root / "cities" / f"{CITY}.yaml").write_text(CITY_YAML, encoding="utf-8")
    config = load_city_file(root / "cities" / f"{CITY}.yaml", root / "templates")
    training = task_settings(config, expectations_dir=REPO / "expectations").training
    days = [DAY - dt.timedelta(days=i) for i in range(TRAIN_DAYS, 0, -1)]
    history = pd.concat([generate_day(CITY, d) for d in days], ignore_index=True)
    splits = time_split(history, config.dataset.time_column, training.split.validation_fraction, 0.15)
    trained = train_model(splits, training.spec)
    # The day: the demo's generator at the scale that gives about ``rows`` trips, cut to ``rows``.
    per_day = len(generate_day(CITY, DAY))
    day = generate_day(CITY, DAY, scale=rows / per_day * 1.1 + 0.01).head(rows)
    folder = root / "data" / "raw" / "trips" / CITY / f"date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    day.to_parquet(folder / "part-0.parquet", index=False)
    env = _env(root)
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])

    def register(name: str) -> str:
        experiment = get_or_create_experiment(client, name, f"file://{root}/artifacts")
        run = client.create_run(experiment)
        source = log_model(client, run.info.run_id, trained, history)
        client.set_terminated(run.info.run_id)
        version = register_challenger(client, name, source, run.info.run_id, {}, alias=False)
        client.set_registered_model_alias(name, "champion", version.version)
        return str(version.version)

    world = {
        "rows": len(day),
        "trees": trained.booster.num_trees(),
        "holdout_rmse": trained.metrics["holdout_rmse"],
        "settings": scoring_settings(config).to_dict(),
        "version": register(MODEL),
        "partition": str(folder),
    }
    (root / "world.json").write_text(json.dumps(world), encoding="utf-8")
    root_register[str(root)] = register
    print(f"world: {len(day):,} rows on {DAY}, model of {world['trees']} trees, {root}", flush=True)
    return root


#: The register function of each world, for the HTTP part's cities (the trained model stays in memory).
root_register: dict[str, Any] = {}


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "AIRFLOW_ML_DATA_ROOT": str(root / "data"),
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
    }


def _world(root: Path) -> dict[str, Any]:
    return json.loads((root / "world.json").read_text(encoding="utf-8"))


# --- batch ---


def _batch(world: Path, repeat: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {"task": [], "bare": []}
    for _ in range(repeat):
        for kind in runs:
            runs[kind].append(_measure(kind, world))
    med = {kind: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for kind, rs in runs.items()}
    rows = _world(world)["rows"]
    print(f"\nbatch scoring, {rows:,} rows, median of {repeat} fresh processes each")
    print(f"{'':>24} {'task':>8} {'bare':>8} {'ratio':>6}")
    best = {kind: min(r["wall"] for r in rs) for kind, rs in runs.items()}
    lines = [
        ("process (imports incl.)", med["task"]["wall"], med["bare"]["wall"]),
        ("fastest process", best["task"], best["bare"]),
        ("CPU (user+sys)", med["task"]["cpu"], med["bare"]["cpu"]),
        ("work after imports", med["task"]["work"], med["bare"]["work"]),
        ("imports", med["task"]["imports"], med["bare"]["imports"]),
    ]
    for label, task, bare in lines:
        print(f"{label:>24} {task:>7.2f}s {bare:>7.2f}s {task / bare:>6.2f}")
    task_mb, bare_mb = max(r["rss_mb"] for r in runs["task"]), max(r["rss_mb"] for r in runs["bare"])
    print(f"{'peak RSS':>24} {task_mb:>6.0f}MB {bare_mb:>6.0f}MB {task_mb / bare_mb:>6.2f}")
    pairs = zip(runs["task"], runs["bare"], strict=True)
    print("each run (task, bare):", [(round(t["wall"], 2), round(b["wall"], 2)) for t, b in pairs])
    parts = _child_json("parts", world)
    print("\nthe task's parts, timed apart in one process (the bare script's counterpart beside each)")
    for name, (task_s, bare_s) in parts.items():
        bare_text = f"{bare_s:>7.3f}s" if bare_s is not None else f"{'-':>8}"
        print(f"{name:>32} {task_s:>7.3f}s {bare_text}")


def _measure(kind: str, world: Path) -> dict[str, float]:
    start = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", kind, "--world", str(world)]
    proc = subprocess.Popen(cmd, env=_env(world), cwd=world, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{err.decode()[-3000:]}")
    return {"wall": elapsed, **json.loads(out.decode().strip().splitlines()[-1])}


def _child_json(kind: str, world: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--world", str(world)]
    done = subprocess.run(cmd, env=_env(world), cwd=world, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report(started: float, imported: float) -> None:
    """The child's last line: imports, work, CPU and its own peak RSS (``VmHWM``, see ``peak_memory.py``)."""
    import resource

    done = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"imports": imported - started, "work": done - imported, "cpu": cpu, "rss_mb": peak_rss_mb()}))


def _run_task(world: Path, _: argparse.Namespace) -> None:
    started = time.perf_counter()
    import lightgbm  # noqa: F401 - the bare script's imports (see _run_bare); the task's own come on top
    import mlflow.pyfunc  # noqa: F401
    import pandas  # noqa: F401
    from mlflow import MlflowClient

    from airflow_ml.ml.steps.step_settings import ScoringSettings
    from airflow_ml.scoring import score_step

    imported = time.perf_counter()
    # As ScoreOperator: settings from the task's dict, the hook's client, resolve once, then score the day.
    settings = ScoringSettings.from_dict(_world(world)["settings"])
    store = os.environ["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    resolved = score_step.resolve(client, settings)
    when = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    score_step.score(client, settings, resolved, day=DAY, run_id="bench", scored_at=when, data_root=str(world / "data"))
    _report(started, imported)


def _run_bare(world: Path, _: argparse.Namespace) -> None:
    started = time.perf_counter()
    import lightgbm  # noqa: F401 - loading the model would import it (its serving code): count it as an import
    import mlflow.pyfunc
    import pandas as pd

    imported = time.perf_counter()
    known = _world(world)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{known['version']}")
    rows = pd.read_parquet(known["partition"])
    _bare_write(world, rows, model.predict(rows[known["settings"]["features"]]), known["version"])
    _report(started, imported)


def _bare_write(world: Path, rows: Any, predictions: Any, version: str) -> None:
    """The log's rows but the prediction id and the input hash, written by pandas."""
    import pandas as pd

    out = pd.DataFrame(
        {
            "prediction": predictions,
            "model_name": MODEL,
            "model_version": version,
            "scoring_run_id": "bench",
            "scored_at": pd.Timestamp(dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)),
            KEY: rows[KEY],
            KEEP: rows[KEEP],
        }
    )
    folder = world / "bare" / f"date={DAY.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    out.to_parquet(folder / "part-0.parquet", index=False)


def _run_parts(world: Path, _: argparse.Namespace) -> None:
    import lightgbm  # noqa: F401 - loading a model imports it: neither side pays it here
    import mlflow.pyfunc
    import pandas as pd
    from mlflow import MlflowClient

    from airflow_ml.data.prediction_ids import hash_rows
    from airflow_ml.data.prediction_log import LogColumns, ScoringContext, write_predictions
    from airflow_ml.ml.model_cache import load_pyfunc
    from airflow_ml.ml.steps.step_settings import ScoringSettings
    from airflow_ml.scoring import score_step

    known = _world(world)
    settings = ScoringSettings.from_dict(known["settings"])
    store = os.environ["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.search_registered_models(max_results=1)  # the store's first connection, paid by both
    parts: dict[str, tuple[float, float | None]] = {}

    def timed(name: str, task: Any, bare: Any = None) -> Any:
        start = time.perf_counter()
        value = task()
        middle = time.perf_counter()
        if bare is not None:
            bare()
        parts[name] = (middle - start, time.perf_counter() - middle if bare is not None else None)
        return value

    uri = f"models:/{MODEL}/{known['version']}"
    # A process's first load pays one-time costs (the serving module, MLflow's loaders) that the fresh processes
    # above count on both sides; warm both paths so that the figures below compare the loads themselves.
    load_pyfunc(client, MODEL, known["version"])
    mlflow.pyfunc.load_model(uri)
    resolved = timed("resolve (registry reads)", lambda: score_step.resolve(client, settings))
    rows, _, input_hash = timed(
        "read and hash the partition",
        lambda: score_step.read_day(settings, DAY, data_root=str(world / "data")),
        lambda: pd.read_parquet(known["partition"]),
    )
    model = timed(
        "load the model (warm)",
        lambda: load_pyfunc(client, MODEL, resolved["version"]),
        lambda: mlflow.pyfunc.load_model(uri),
    )
    features = list(settings.features)
    predictions = timed("predict", lambda: score_step._predict(model, rows[features]))
    namespace = f"{settings.template}/{settings.city}"
    timed("prediction ids", lambda: hash_rows(rows, [KEY], namespace=namespace).array())
    context = ScoringContext(
        settings.template,
        settings.city,
        MODEL,
        resolved["version"],
        "bench",
        input_hash,
        dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC),
    )
    columns = LogColumns(key=(KEY,), keep=(KEEP,))
    timed(
        "write the log (ids included)",
        lambda: write_predictions(str(world / "data"), DAY, rows, predictions, context, columns),
        lambda: _bare_write(world, rows, predictions, resolved["version"]),
    )
    print(json.dumps(parts))


# --- HTTP ---


def _http(world: Path, cities: int, requests: int, clients: int) -> None:
    import httpx
    import pandas as pd
    from mlflow import MlflowClient

    from airflow_ml.ml.model_cache import load_pyfunc

    names = [f"bench_{i:03d}" for i in range(cities)]
    start = time.perf_counter()
    for name in names:
        root_register[str(world)](f"{TEMPLATE}.{name}")
    print(f"\nregistered {cities} cities' models in {time.perf_counter() - start:.1f} s", flush=True)
    known = _world(world)
    features = known["settings"]["features"]
    rows = pd.read_parquet(known["partition"]).head(2_000)
    records = json.loads(rows[[KEY, *features]].to_json(orient="records"))
    port = _free_port()
    cmd = [sys.executable, __file__, "--child", "serve", "--world", str(world), "--port", str(port)]
    env = {**_env(world), "BENCH_CITIES": ",".join(names)}
    server = subprocess.Popen(cmd, env=env, cwd=world, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, server)
        idle = _rss_mb(server.pid)
        http = httpx.Client(base_url=base, timeout=60)
        city = names[0]
        path = f"/v1/models/{TEMPLATE}/{city}:predict"
        http.post(path, json={"rows": records[:1]}).raise_for_status()  # loads the model
        one = _rss_mb(server.pid)
        store = _env(world)["MLFLOW_TRACKING_URI"]
        client = MlflowClient(tracking_uri=store, registry_uri=store)
        model = load_pyfunc(client, f"{TEMPLATE}.{city}", "1")
        sizes = (1, 100)
        bodies = {n: [{"rows": records[(i * n) % 1_000 : (i * n) % 1_000 + n]} for i in range(requests)] for n in sizes}
        frames = {
            n: [rows.iloc[(i * n) % 1_000 : (i * n) % 1_000 + n][features] for i in range(requests)] for n in sizes
        }
        calls = {
            (n, kind): (lambda body: http.post(path, json=body).raise_for_status(), bodies[n])
            if kind == "http"
            else (model.predict, frames[n])
            for n in sizes
            for kind in ("http", "pyfunc")
        }
        times = _latencies(calls, warm_up=20)
        table = [
            (n, times[(n, "http")], times[(n, "pyfunc")], _throughput(base, path, bodies[n], clients)) for n in sizes
        ]
        cold = time.perf_counter()
        for name in names:
            http.post(f"/v1/models/{TEMPLATE}/{name}:predict", json={"rows": records[:1]}).raise_for_status()
        cold_s = time.perf_counter() - cold
        full = _rss_mb(server.pid)
        health = http.get("/v1/health").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nHTTP, one uvicorn process, a warm cache, {requests} requests of each size (ms)")
    heads = ("http p50", "http p99", "pyfunc p50", "pyfunc p99", "p50 ratio", "req/s")
    print(f"{'rows':>5} " + " ".join(f"{head:>10}" for head in heads))
    for size, served, local, rps in table:
        print(
            f"{size:>5} {served[0]:>10.2f} {served[1]:>10.2f} {local[0]:>10.2f} {local[1]:>10.2f} "
            f"{served[0] / local[0]:>10.1f} {rps:>10.0f}"
        )
    print(f"requests per second: {clients} client threads, keep-alive, each request logged to the prediction log")
    print(
        f"server RSS: {idle:.0f} MB started, {one:.0f} MB with one model, {full:.0f} MB with {cities} models "
        f"({(full - one) / max(cities - 1, 1):.1f} MB per model); {cities} first requests (loads) in {cold_s:.1f} s; "
        f"cache: {health['cache']}"
    )
    _request_parts(world, model, records, features, requests)


def _request_parts(world: Path, model: Any, records: list[dict[str, Any]], features: list[str], count: int) -> None:
    """What the app does per request besides HTTP and JSON, each part timed in this process (median, ms)."""
    from airflow_ml.data.prediction_ids import prediction_ids
    from airflow_ml.data.prediction_log import LogColumns, ScoringContext, write_predictions
    from airflow_ml.scoring.http_schemas import model_columns, rows_frame

    schema = model.metadata.get_input_schema()
    now = dt.datetime.now(dt.UTC)
    print("\nper request, in this process (median ms): the app's parts")
    print(f"{'rows':>5} {'rows frame':>10} {'ids':>10} {'predict':>10} {'log write':>10}")
    for size in (1, 100):
        parts: dict[str, list[float]] = {"frame": [], "ids": [], "predict": [], "log": []}
        for i in range(count):
            marks = [time.perf_counter()]
            frame = rows_frame(records[(i * size) % 1_000 : (i * size) % 1_000 + size], schema, features)
            marks.append(time.perf_counter())
            ids = prediction_ids(frame, [KEY], namespace=f"{TEMPLATE}/parts")
            marks.append(time.perf_counter())
            predictions = model.predict(frame[model_columns(schema, features)])
            marks.append(time.perf_counter())
            context = ScoringContext(TEMPLATE, "parts", "m", "1", f"http-{i}-{size}", ids[0], now)
            columns = LogColumns(key=(KEY,), keep=(KEEP,))
            write_predictions(str(world / "data"), now.date(), frame, predictions, context, columns, request=True)
            marks.append(time.perf_counter())
            for name, start, end in zip(parts, marks[:-1], marks[1:], strict=True):
                parts[name].append((end - start) * 1000)
        print(f"{size:>5} " + " ".join(f"{statistics.median(ms):>10.2f}" for ms in parts.values()))


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(base: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{server.stderr.read().decode()[-3000:] if server.stderr else ''}")
        try:
            httpx.get(f"{base}/v1/health", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer within 120 s")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def _latencies(calls: dict[Any, tuple[Any, list[Any]]], warm_up: int) -> dict[Any, tuple[float, float]]:
    """p50 and p99 in milliseconds of each ``call`` on its inputs, the calls interleaved (the same machine load)."""
    times: dict[Any, list[float]] = {name: [] for name in calls}
    count = len(next(iter(calls.values()))[1])
    for i in range(-warm_up, count):
        for name, (call, inputs) in calls.items():
            start = time.perf_counter()
            call(inputs[max(i, 0)])
            if i >= 0:
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: (statistics.median(ms), statistics.quantiles(ms, n=100)[98]) for name, ms in times.items()}


def _throughput(base: str, path: str, bodies: list[Any], clients: int) -> float:
    import httpx

    share = [bodies[i::clients] for i in range(clients)]

    def send(mine: list[Any]) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for body in mine:
                http.post(path, json=body).raise_for_status()

    threads = [threading.Thread(target=send, args=(mine,)) for mine in share]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(bodies) / (time.perf_counter() - start)


def _run_server(world: Path, args: argparse.Namespace) -> None:
    import uvicorn
    from mlflow import MlflowClient

    from airflow_ml.ml.model_cache import ModelCache
    from airflow_ml.scoring.http_app import create_app
    from airflow_ml.scoring.http_fleet import ServedCity

    features = tuple(_world(world)["settings"]["features"])
    names = os.environ["BENCH_CITIES"].split(",")
    fleet = [
        ServedCity(
            template=TEMPLATE,
            city=name,
            model_name=f"{TEMPLATE}.{name}",
            parent_model_name=None,
            features=features,
            output_root=str(world / "data"),
            key_columns=(KEY,),
            keep_columns=(KEEP,),
        )
        for name in names
    ]
    store = os.environ["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    cache = ModelCache(client, max_models=len(names), alias_ttl=30.0)
    app = create_app(fleet, cache, client=client, alias_ttl=30.0)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


# --- monitor ---


def _monitor(world: Path, cities: int, windows: int, labels: int) -> None:
    """Each city's champion, a prediction log and labels of ``windows`` days; one monitor pass over the cities."""
    import pandas as pd
    from mlflow import MlflowClient

    from airflow_ml.data.demo import generate_day
    from airflow_ml.data.prediction_log import LogColumns, ScoringContext, write_predictions
    from airflow_ml.ml.model_cache import load_pyfunc
    from airflow_ml.ml.steps.step_settings import MonitorSettings
    from airflow_ml.monitoring.monitor_step import HOLDOUT_METRIC_TAG, HOLDOUT_SCORE_TAG, monitor_city

    known = _world(world)
    store = _env(world)["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    model = load_pyfunc(client, MODEL, known["version"])
    features = known["settings"]["features"]
    end = DAY - dt.timedelta(days=1)
    days = [end - dt.timedelta(days=i) for i in range(windows - 1, -1, -1)]
    per_day = len(generate_day(CITY, DAY))
    frames = {d: generate_day(CITY, d, scale=labels / per_day).head(labels) for d in days}
    predicted = {d: model.predict(frame[features]) for d, frame in frames.items()}
    data_root = str(world / "monitor")
    start = time.perf_counter()
    names = [f"watched_{i:03d}" for i in range(cities)]
    for name in names:
        model_name = f"{TEMPLATE}.{name}"
        version = root_register[str(world)](model_name)
        client.set_model_version_tag(model_name, version, HOLDOUT_SCORE_TAG, json.dumps(known["holdout_rmse"]))
        client.set_model_version_tag(model_name, version, HOLDOUT_METRIC_TAG, "rmse")
        for d, frame in frames.items():
            moment = dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC)
            context = ScoringContext(TEMPLATE, name, model_name, version, f"scheduled__{d}", "bench", moment)
            write_predictions(data_root, d, frame, predicted[d], context, LogColumns(key=(KEY,)))
            folder = Path(data_root) / "labels" / name / f"date={d.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            frame[[KEY, "duration_min"]].to_parquet(folder / "part-0.parquet", index=False)
    print(f"\nmonitor: {cities} cities' champions, logs and labels written in {time.perf_counter() - start:.1f} s")
    settings = [
        MonitorSettings(
            template=TEMPLATE,
            city=name,
            model_name=f"{TEMPLATE}.{name}",
            metric="rmse",
            target="duration_min",
            predictions_root="{data_root}",
            labels_source="{data_root}/labels/{city}",
            key_columns=[KEY],
            windows=windows,
        )
        for name in names
    ]
    for label in ("first run", "rerun (the windows' MLflow runs exist)"):
        seconds, statuses = [], []
        for city in settings:
            began = time.perf_counter()
            payload, _ = monitor_city(
                client, city, day=end, data_root=data_root, artifact_root=f"file://{world}/artifacts"
            )
            seconds.append(time.perf_counter() - began)
            statuses.append(str(payload["status"]))
        counts = pd.Series(statuses).value_counts().to_dict()
        print(
            f"monitor, {label}: {cities} cities x {windows} windows of {labels} labels a day, one city after the other "
            f"in one process: {sum(seconds):.1f} s in total, {statistics.median(seconds):.2f} s median a city, "
            f"slowest {max(seconds):.2f} s; verdicts {counts}"
        )


_CHILDREN = {"task": _run_task, "bare": _run_bare, "parts": _run_parts, "serve": _run_server}


if __name__ == "__main__":
    main()
