"""``airflow-ml run``, ``status``, ``env`` and ``demo``: one city now, the fleet's latest runs, the embedded default.

The project folder is the working folder (the one holding ``dags/`` and ``dag_templates/``, as for ``make``).
Without ``AIRFLOW_HOME``, every variable of the embedded default (:mod:`airflow_ml.embedded`) that the
environment does not set is set before Airflow is imported, since Airflow reads its configuration at import.
With ``AIRFLOW_HOME``, the user's own Airflow environment is used as it is, and the command says so on stderr
(see :func:`airflow_ml.embedded.effective_environment`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from airflow_ml.embedded import (
    apply_environment,
    effective_environment,
    make_folders,
    own_environment_note,
    reset_demo,
    shell_exports,
    state_folder,
)
from airflow_ml.settings import DATA_ROOT_ENV

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_parsers(commands: Any) -> None:
    """Add ``run``, ``status`` and ``env`` to the ``airflow-ml`` subcommands (``commands``)."""
    run = commands.add_parser(
        "run", help="run one city's DAG now with dag.test() on the embedded default and print its summary row"
    )
    run.add_argument("dag_id", help="the DAG to run, e.g. ride_duration.berlin")
    run.add_argument(
        "--conf", default=None, metavar="JSON", help="trigger params as a JSON object, e.g. '{\"num_boost_round\": 50}'"
    )
    run.add_argument("--window-start", default=None, metavar="YYYY-MM-DD", help="first day of data (window_start)")
    run.add_argument("--window-end", default=None, metavar="YYYY-MM-DD", help="last day of data (window_end)")

    status = commands.add_parser(
        "status", help="each city's latest run, read from what the runs left beside their snapshots (no Airflow)"
    )
    status.add_argument("--template", default=None, help="only the cities of this template")
    status.add_argument("--root", default="dag_templates", help="templates folder (default: dag_templates)")
    status.add_argument(
        "--data-root",
        default=None,
        help=f"data root (default: ${DATA_ROOT_ENV}, else the embedded default's when AIRFLOW_HOME is unset)",
    )

    env = commands.add_parser(
        "env", help='print the embedded default as shell exports, for eval "$(airflow-ml env)" (used by make)'
    )
    env.add_argument("--demo", action="store_true", help="the demo's own folder var/demo/ instead of var/")


def env_command(args: argparse.Namespace) -> int:
    """Print the effective embedded default as ``export`` lines (and create the folders it names)."""
    environment = effective_environment(Path.cwd(), demo=args.demo)
    _say_own_environment("env", demo=args.demo)
    make_folders(environment)
    sys.stdout.write(shell_exports(environment))
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run one DAG with ``dag.test()``; exit 0 on success, 1 on a failed run, 2 on bad input."""
    try:
        conf = _conf(args.conf, args.window_start, args.window_end)
    except ValueError as exc:
        print(f"airflow-ml run: {exc}", file=sys.stderr)
        return 2
    project = Path.cwd()
    own = _say_own_environment("run")
    if not own and not os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") and not (project / "dags").is_dir():
        print(
            f"airflow-ml run: no dags/ folder in {project}; run it from the project folder (the one with dags/ "
            "and dag_templates/), or set AIRFLOW__CORE__DAGS_FOLDER",
            file=sys.stderr,
        )
        return 2
    from airflow_ml.cli.demo_task_logs import PLAIN_CONSOLE

    os.environ.update(PLAIN_CONSOLE)  # Airflow's console lines go to the task log files, without colour codes
    apply_environment(effective_environment(project))
    with _stdout_to(sys.stderr):
        dag, problem = _find_dag(args.dag_id)
    if dag is None:
        print(f"airflow-ml run: {problem}", file=sys.stderr)
        return 2
    from airflow_ml.operators.overrides import conf_problems, param_defaults, refusal

    problems = conf_problems(conf, param_defaults(dag.params))
    if problems:  # what run creation says (CheckedConfDAG.test), before the database is migrated
        print(f"airflow-ml run: {refusal(args.dag_id, problems)}", file=sys.stderr)
        return 2
    from airflow.sdk.exceptions import ParamValidationError

    not_ready = ensure_database(migrate=not own)
    if not_ready:
        print(f"airflow-ml run: {not_ready}", file=sys.stderr)
        return 1
    try:
        run = _test_with_task_logs(dag, conf)
    except ParamValidationError as exc:
        print(
            f"airflow-ml run: {args.dag_id}: {exc}; the params and their bounds: `airflow dags details`",
            file=sys.stderr,
        )
        return 2
    from airflow_ml.cli.run_summary import format_table, summarize_folder
    from airflow_ml.data.snapshot import snapshot_location

    template, city = args.dag_id.split(".", 1)
    data_root = os.environ.get(DATA_ROOT_ENV)
    if data_root:
        folder = snapshot_location(f"{data_root.rstrip('/')}/snapshots", template, city, run.run_id)
        print(format_table([summarize_folder(folder, city=city, state=str(run.state))], batch_header="data"))
    else:
        print(f"airflow-ml run: no summary row: {DATA_ROOT_ENV} is not set", file=sys.stderr)
    print(f"run {run.run_id!r}: {run.state}", file=sys.stderr)
    return 0 if str(run.state) == "success" else 1


def _test_with_task_logs(dag: Any, conf: dict[str, Any]) -> Any:
    """``dag.test()`` with each task's output in its own log file, where the Airflow UI reads it.

    Standard error gets a line per finished task (city, task, seconds, state), then where the logs are;
    ``dag.test()``'s own lines go to ``airflow-ml-run.log`` beside the task logs; standard output stays the
    summary's alone (see :mod:`airflow_ml.cli.demo_task_logs`).
    """
    from airflow.configuration import conf as airflow_conf

    from airflow_ml.cli.demo_task_logs import dag_test_with_task_logs, terminal_stream

    logs = Path(airflow_conf.get("logging", "base_log_folder"))
    logs.mkdir(parents=True, exist_ok=True)
    between = logs / "airflow-ml-run.log"
    with terminal_stream(2) as terminal:
        run = dag_test_with_task_logs(dag, terminal=terminal, between=between, run_conf=conf or None)
        print(
            f"task logs: in the Airflow UI, files under {logs}/dag_id={dag.dag_id}/; the run's lines: {between}",
            file=terminal,
        )
    return run


def status_command(args: argparse.Namespace) -> int:
    """Print each city's latest run per template; exit 2 for an unknown template."""
    from airflow_ml.cli.run_summary import format_table, latest_summaries
    from airflow_ml.templates import load_city_configs, load_parent_configs
    from airflow_ml.templates.files import unknown_template

    root = Path(args.root)
    if not (root / "cities").is_dir():
        print(f"airflow-ml status: {root}/cities does not exist; give the templates folder (--root)", file=sys.stderr)
        return 2
    configs, errors = load_city_configs(root)
    parents, parent_errors = load_parent_configs(root)
    cities: dict[str, list[str]] = {}
    for template, city in [(c.template, c.city) for c in configs] + [(p.template, p.city) for p in parents]:
        cities.setdefault(template, []).append(city)
    unknown = None if args.template is None else unknown_template(args.template, root / "templates")
    if unknown:
        print(f"airflow-ml status: {unknown}", file=sys.stderr)
        return 2
    data_root = args.data_root or os.environ.get(DATA_ROOT_ENV) or effective_environment(Path.cwd()).get(DATA_ROOT_ENV)
    if not data_root:
        _say_own_environment("status")
        print(f"airflow-ml status: give --data-root or set {DATA_ROOT_ENV}", file=sys.stderr)
        return 2
    chosen = [args.template] if args.template else sorted(cities)
    for index, template in enumerate(chosen):
        if len(chosen) > 1:
            print(("\n" if index else "") + f"== {template} ==")
        if not cities.get(template):
            print(f"no city of template {template!r} in {root}/cities")
            continue
        print(format_table(latest_summaries(data_root, template, cities[template]), batch_header="data"))
    broken = len(errors) + len(parent_errors)
    if broken:
        print(f"{broken} file(s) do not load and are not shown: airflow-ml lint {root}", file=sys.stderr)
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """The demo in its own folder (``var/demo``): reset its data and registry (saying so), migrate, run."""
    project = Path.cwd()
    print(f"the demo keeps its Airflow home, data and MLflow store in {state_folder(project, demo=True)}/")
    reset_demo(project)  # before the environment, which makes the folders it names
    from airflow_ml.cli.demo_task_logs import PLAIN_CONSOLE

    os.environ.update(PLAIN_CONSOLE)  # Airflow's console lines go to the task log files
    apply_environment(effective_environment(project, demo=True), force=True)
    problem = ensure_database()
    if problem:
        print(f"airflow-ml demo: {problem}", file=sys.stderr)
        return 1
    from airflow_ml.cli.demo_run import run_demo

    return run_demo(templates_root=Path(args.templates), expectations_dir=Path(args.expectations))


def ensure_database(*, migrate: bool = True) -> str | None:
    """Migrate Airflow's metadata database when it is SQLite (the embedded default's) and not migrated yet.

    Args:
        migrate: Migrate it; False for a user's own Airflow (``AIRFLOW_HOME`` set), which is never migrated here.

    Returns:
        None when the database is ready, else what to do (another database is never migrated from here).
    """
    from airflow import settings
    from airflow.utils.db import check_migrations, initdb

    # Checking costs a warning of a library Airflow imports (starlette's httpx) and an INFO line per second
    # waited: neither says anything to the person who ran the command, so neither reaches the terminal.
    with _stdout_to(sys.stderr), warnings.catch_warnings(), _quiet("airflow.utils.db"):
        warnings.filterwarnings("ignore", message=r".*starlette\.testclient")
        try:
            check_migrations(timeout=0)
            return None
        except TimeoutError:
            pass
    url = str(settings.SQL_ALCHEMY_CONN)
    if not migrate or not url.startswith("sqlite:"):
        return f"Airflow's metadata database {url.split('@')[-1]} is not migrated; run `airflow db migrate` first"
    log = Path(os.environ.get("AIRFLOW_HOME", ".")) / "db-migrate.log"
    print(f"migrating Airflow's SQLite database {url.removeprefix('sqlite:///')} (log: {log})", file=sys.stderr)
    with log.open("a", encoding="utf-8") as handle, _stdout_to(handle, stderr=True):
        initdb()
    return None


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Within the block, ``logger`` passes warnings and worse only."""
    import logging

    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.WARNING)
    try:
        yield
    finally:
        target.setLevel(level)


def _say_own_environment(command: str, *, demo: bool = False) -> bool:
    """Say on stderr when the user's own Airflow environment is used instead of the embedded default."""
    note = None if demo else own_environment_note()
    if note:
        print(f"airflow-ml {command}: {note}", file=sys.stderr)
    return note is not None


def _conf(text: str | None, window_start: str | None, window_end: str | None) -> dict[str, Any]:
    """The run's conf: ``--conf``'s JSON object, with the window flags as ``window_start``/``window_end``."""
    conf: dict[str, Any] = {}
    if text is not None:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"--conf is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (character {exc.pos}): "
                f"{text[max(0, exc.pos - 20) : exc.pos]}>>>{text[exc.pos : exc.pos + 20]}; give an object such as "
                "'{\"num_boost_round\": 50}'"
            ) from None
        if not isinstance(loaded, dict):
            raise ValueError(f"--conf must be a JSON object such as '{{\"num_boost_round\": 50}}', got {text!r}")
        conf = loaded
    for flag, key, value in (
        ("--window-start", "window_start", window_start),
        ("--window-end", "window_end", window_end),
    ):
        if value is None:
            continue
        if not _DAY.fullmatch(value):
            raise ValueError(f"{flag} {value!r} is not a date YYYY-MM-DD, e.g. 2026-01-05")
        try:
            dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{flag} {value!r} is not a day of the calendar ({exc})") from None
        if key in conf and conf[key] != value:
            raise ValueError(f"{flag} {value!r} and --conf's {key} {conf[key]!r} disagree; give one of them")
        conf[key] = value
    start, end = conf.get("window_start"), conf.get("window_end")
    if isinstance(start, str) and isinstance(end, str) and start > end:
        raise ValueError(f"the window starts ({start}) after it ends ({end}); swap --window-start and --window-end")
    return conf


def _find_dag(dag_id: str) -> tuple[Any, str]:
    """The DAG ``dag_id`` as Airflow parses the DAGs folder, or None and why not (with a "did you mean")."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    from airflow_ml.templates.describe import did_you_mean

    folder = conf.get("core", "dags_folder")
    bag = DagBag(dag_folder=folder, collect_dags=True)
    if dag_id in bag.dags:
        return bag.dags[dag_id], ""
    known = sorted(bag.dags)
    cities = [d for d in known if d.split(".", 1)[-1] == dag_id]
    hint = f"did you mean {cities[0]!r}?" if cities else did_you_mean(dag_id, known) or "no close match"
    broken = f"; {len(bag.import_errors)} DAG file(s) fail to import: airflow-ml lint" if bag.import_errors else ""
    return None, f"no DAG {dag_id!r} in {folder}; {hint} (known: {known}){broken}"


@contextmanager
def _stdout_to(target: IO[str], *, stderr: bool = False) -> Iterator[None]:
    """Send what is written to stdout (and ``stderr`` too, when asked), Python and C level alike, to ``target``.

    Airflow and the tasks log to stdout; the command's own answer (the summary table) is the only thing left on it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        target_fd = target.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a file (pytest's capture): Python level only
        with contextlib.redirect_stdout(target):
            yield
        return
    streams = (1, 2) if stderr else (1,)
    saved = [os.dup(fd) for fd in streams]
    target.flush()
    for fd in streams:
        os.dup2(target_fd, fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(streams, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
