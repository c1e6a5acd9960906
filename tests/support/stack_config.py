"""What an :class:`~tests.support.stack.AirflowStack` needs, writes and sets: programs, its world, environments."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import re
import secrets
import socket
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.support import REPO
from tests.support.processes import free_port
from tests.support.s3_servers import aws_connection
from tests.support.services import service_missing
from tests.support.worlds import copy_template, write_loader

ADMIN_USER = "admin"
REDIS = ("127.0.0.1", 6379)
#: The airflow_local_settings that docker-compose.yaml puts on PYTHONPATH (airflow_ml/worker_preload.py).
LOCAL_SETTINGS = REPO / "deploy" / "airflow" / "settings"
#: Environment names never inherited from the test process: the stack's own configuration replaces them.
_NOT_INHERITED = ("AIRFLOW", "AWS_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_TELEMETRY_OFF = {
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
}


#: The ``dag:`` block of every city file of a stack: no retries, no schedule (``dag_extra`` may override them).
_DAG_DEFAULTS = {"retries": "0", "schedule": "null"}


def dag_block(dag_extra: str = "") -> str:
    """A city file's ``dag:`` block: :data:`_DAG_DEFAULTS` plus ``dag_extra`` (YAML lines indented by two
    spaces, e.g. ``"  retries: 2\n  retry_delay_minutes: 0.05\n"``); a key set in ``dag_extra`` replaces
    its default, so that the block never holds a key twice."""
    if dag_extra and not dag_extra.endswith("\n"):
        dag_extra += "\n"
    overridden = set(re.findall(r"^  ([A-Za-z_][\w-]*)\s*:", dag_extra, flags=re.MULTILINE))
    defaults = "".join(f"  {key}: {value}\n" for key, value in _DAG_DEFAULTS.items() if key not in overridden)
    return f"dag:\n{defaults}{dag_extra}"


def write_world(
    templates_root: Path,
    dags_dir: Path,
    *,
    cities: Sequence[str],
    template: str,
    city_extra: str = "",
    dag_extra: str = "",
) -> None:
    """A templates folder with a copy of ``ride_duration`` named ``template``, one file per city (the
    ``dag:`` block of :func:`dag_block` with ``dag_extra``, then ``city_extra``), and its DAG loader in
    ``dags_dir``."""
    copy_template(templates_root, template)
    for city in cities:
        (templates_root / "cities" / f"{city}.yaml").write_text(
            f"city: {city}\ntemplate: {template}\n{dag_block(dag_extra)}{city_extra}",
            encoding="utf-8",
        )
    write_loader(dags_dir, "cities", templates_root)


def check_stack_programs(executor: str) -> None:
    """Skip (or fail, under ``AIRFLOW_ML_REQUIRE_SERVICES=1``) when a program or service the stack needs is missing:
    moto, mlflow, Airflow and asyncpg; with the ``CeleryExecutor``, the Celery provider and Redis."""
    programs = [("moto", "moto[server]"), ("mlflow", "mlflow"), ("airflow", "apache-airflow")]
    # Airflow on PostgreSQL also opens an async engine, through asyncpg (its ``postgres`` extra).
    programs.append(("asyncpg", "asyncpg (Airflow's async PostgreSQL driver)"))
    for module, package in programs:
        if importlib.util.find_spec(module) is None:
            service_missing(f"{module} is not installed in {sys.prefix}; install {package}")
    if executor == "CeleryExecutor":
        if importlib.util.find_spec("airflow.providers.celery") is None:
            service_missing("the Celery provider is not installed; install apache-airflow-providers-celery")
        try:
            with socket.create_connection(REDIS, timeout=3) as conn:
                conn.sendall(b"PING\r\n")
                if not conn.recv(64).startswith(b"+PONG"):
                    raise OSError("no PONG")
        except OSError as exc:
            service_missing(f"Redis at {REDIS[0]}:{REDIS[1]} is not reachable ({exc}); start redis-server")


def forget_celery_queue(env: dict[str, str]) -> None:
    """Delete the broker's keys of a stack's own Celery queue (the queue and kombu's bindings of it), if it has one."""
    queue = env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE")
    if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor" or not queue:
        return
    import redis

    with (
        contextlib.suppress(redis.RedisError),
        redis.Redis.from_url(env["AIRFLOW__CELERY__BROKER_URL"]) as broker,
    ):
        keys = list(broker.scan_iter(match=f"*{queue}*"))
        if keys:
            broker.delete(*keys)


def task_log(home: Path, dag_id: str, run_id: str, task_id: str, *, chars: int = 6000) -> str:
    """The end of a task's log files (every attempt), read from the log folder of the AIRFLOW_HOME ``home``."""
    folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    files = sorted(folder.glob("*.log")) if folder.is_dir() else []
    if not files:
        return f"[no log for {task_id} in {folder}]"
    return "\n".join(f"--- {path.name}:\n{path.read_text(errors='replace')[-chars:]}" for path in files)


def base_env() -> dict[str, str]:
    """The test process's environment without its Airflow, AWS and MLflow settings, telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    return {**env, **_TELEMETRY_OFF, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def airflow_env(
    *,
    home: Path,
    dags_dir: Path,
    executor: str,
    api_port: int,
    password: str,
    metadata_db_url: str,
    data_root: str,
    s3_endpoint: str,
    mlflow_url: str,
    worker_concurrency: int,
    preload: bool = True,
) -> dict[str, str]:
    """The environment of every Airflow process of a stack (and of the tasks they run).

    With ``preload``, the scheduler (LocalExecutor) and the Celery worker import the tasks' libraries once, as
    docker-compose.yaml's do (``AIRFLOW_ML_PRELOAD``), and the task processes they fork inherit them. Writes the
    SimpleAuthManager passwords file (``admin`` with ``password``) into ``home``.
    """
    api_url = f"http://127.0.0.1:{api_port}"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: password}), encoding="utf-8")
    from cryptography.fernet import Fernet

    env = {
        **base_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # A loaded CI machine parses slowly: no import or processor timeout for a healthy file.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        # The LocalExecutor forks this many workers at start; a test runs a few tasks at a time.
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_url,
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        # Short loops, for test speed: new files are seen within seconds, a DAG is re-parsed each minute.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        # Parallel stacks on one machine: every log server on a port of its own.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_ML_DATA_ROOT": data_root,
        "AIRFLOW_ML_PRELOAD": "auto" if preload else "off",
        "PYTHONPATH": os.pathsep.join(
            [str(LOCAL_SETTINGS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        ),
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(s3_endpoint),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": mlflow_url}}),
    }
    if executor == "CeleryExecutor":
        base, database = metadata_db_url.split("://", 1)[1].rsplit("/", 1)
        env |= {
            # A random broker database and a queue of the stack's own: parallel stacks never share tasks.
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{random.randint(1, 15)}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{base}/{database}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"airflow-ml-{uuid.uuid4().hex[:12]}",
        }
    return env
