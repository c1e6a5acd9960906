"""docker-compose.yaml, the Dockerfiles and deploy/ against the code: no Docker engine runs here.

The compose file is read as Docker Compose reads it (YAML merge keys, ``${VAR:-default}`` interpolation,
``$$`` escapes), then its commands are parsed by Airflow's and MLflow's own command-line parsers, its
connection variables by Airflow and this project's hooks, its paths against the repository.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support import REPO
from tests.support.benchmark_scripts import load_benchmark_script
from tests.support.postgres import POSTGRES_DSN
from tests.support.services import service_missing

COMPOSE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
    "flower": "celery flower",
}
REQUIRED = {"postgres", "redis", "minio", "minio-init", "mlflow", "airflow-init", "serving", *AIRFLOW_SERVICES} - {
    "flower"
}
TELEMETRY_OFF = {
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
}
_NAME = re.compile(r"\$\{(?P<name>\w+)(?P<op>:?-)?")
_SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$|_KEY_ID$|ROOT_USER$")


def references(text: str) -> list[tuple[int, int, str, str | None, str]]:
    """Each outermost ``${NAME}``, ``${NAME:-default}`` or ``${NAME-default}`` of ``text`` (defaults may nest
    references, as Compose v2 reads them), as (start, end, name, op, default); ``$$`` is no reference."""
    found, position = [], 0
    while (start := text.find("$", position)) != -1:
        if text.startswith("$$", start):
            position = start + 2
            continue
        match = _NAME.match(text, start)
        if match is None:
            position = start + 1
            continue
        depth, end = 1, match.end()
        while depth:
            if text.startswith("${", end):
                depth, end = depth + 1, end + 2
                continue
            depth -= text[end] == "}"
            end += 1
        name, op = match.group("name", "op")
        found.append((start, end, name, op, text[match.end() : end - 1] if op else ""))
        position = end
    return found


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of every string in ``value``: ``${V}``, ``${V:-d}``, ``${V-d}`` and ``$$``."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value
    parts, position = [], 0
    for start, end, name, op, default in references(value):
        parts.append(value[position:start].replace("$$", "$"))
        if op == ":-":
            parts.append(env.get(name) or interpolate(default, env))
        elif op == "-":
            parts.append(env[name] if name in env else interpolate(default, env))
        else:
            parts.append(env.get(name, ""))
        position = end
    parts.append(value[position:].replace("$$", "$"))
    return "".join(parts)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Docker Compose resolves it with ``env`` (none: every default)."""
    return interpolate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), env or {})


def env_example() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def locked(package: str) -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def import_string(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def option(args: list[str], name: str) -> str:
    """The value of ``--name=value`` in an exec-form command."""
    return next(arg.split("=", 1)[1] for arg in args if arg.startswith(f"--{name}="))


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return compose()["services"]


def test_the_file_has_every_service_of_the_stack(services: dict[str, Any]) -> None:
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default >= REQUIRED, f"docker-compose.yaml lacks {sorted(REQUIRED - default)}"
    assert services["flower"]["profiles"] == ["flower"]
    assert services["airflow-cli"]["profiles"] == ["debug"]
    assert services["airflow-ml-demo-upload"]["profiles"] == services["airflow-ml-demo-data"]["profiles"] == ["demo"]


def test_airflow_services_share_one_image_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    common = compose()["x-airflow-common"]
    assert common["build"]["context"] == "."
    assert (REPO / "Dockerfile").is_file()
    airflow = [*AIRFLOW_SERVICES, "airflow-init", "airflow-cli", "airflow-ml-demo-data", "serving"]
    for name in airflow:
        service = services[name]
        assert (service["image"], service["build"]) == (common["image"], common["build"]), name
        assert service["environment"].items() >= common["environment"].items(), f"{name} drops common variables"
        assert service["user"] == common["user"] or name == "airflow-init", name
    assert COMPOSE.read_text(encoding="utf-8").count("<<: *airflow-common\n") == len(airflow)


def test_commands_are_commands_of_the_installed_airflow(services: dict[str, Any]) -> None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    env = services["airflow-worker"]["environment"]
    commands = {name: shlex.split(services[name]["command"]) for name in AIRFLOW_SERVICES}
    assert commands == {name: expected.split() for name, expected in AIRFLOW_SERVICES.items()}
    init_script = services["airflow-init"]["command"][1]
    assert "/entrypoint airflow db migrate" in init_script
    health = [services[name]["healthcheck"]["test"][1] for name in ("airflow-dag-processor", "airflow-triggerer")]
    for argv in [*commands.values(), ["db", "migrate"], *(shlex.split(test)[1:] for test in health)]:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"'airflow {' '.join(argv)}' is not a command of Airflow {locked('apache-airflow')}")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # Found, not imported: the image brings its own Celery (see the Dockerfile); only the provider must exist.
    assert importlib.util.find_spec("airflow.providers.celery.executors.celery_executor") is not None
    assert issubclass(import_string(env["AIRFLOW__CORE__AUTH_MANAGER"]), BaseAuthManager)
    execution_api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (execution_api.hostname, execution_api.port, execution_api.path) == (
        "airflow-apiserver",
        8080,
        "/execution/",
    )
    assert "8080" in services["airflow-apiserver"]["ports"][0].split(":")[-1]


def test_celery_uses_the_redis_and_postgres_services(services: dict[str, Any]) -> None:
    env, postgres = services["airflow-worker"]["environment"], services["postgres"]["environment"]
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    assert 6379 in services["redis"]["expose"]
    for key, scheme in (
        ("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql"),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2"),
    ):
        url = urlsplit(env[key])
        assert (url.scheme, url.hostname, url.port) == (scheme, "postgres", 5432), key
        assert (url.username, url.password, url.path) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            f"/{postgres['POSTGRES_DB']}",
        ), key


def test_the_connections_reach_the_mlflow_and_minio_services(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Connection
    from mlflow.server.security_utils import is_allowed_host_header

    from airflow_ml.hooks.mlflow import MlflowHook
    from airflow_ml.hooks.storage_credentials import storage_options

    env = services["airflow-worker"]["environment"]
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", env["AIRFLOW_CONN_AWS_DEFAULT"])
    for conn_id, conn_type in (("mlflow_default", "mlflow"), ("aws_default", "aws")):
        parsed = Connection.from_json(env[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)
        assert parsed.conn_type == conn_type, conn_id

    hook, server = MlflowHook(), services["mlflow"]["command"]
    assert hook.tracking_uri == f"http://mlflow:{option(server, 'port')}"
    assert hook.artifact_root is None
    assert hook._settings["token"] is None
    assert hook._settings["username"] is None
    assert is_allowed_host_header(option(server, "allowed-hosts").split(","), urlsplit(hook.tracking_uri).netloc)

    s3 = storage_options(env["AIRFLOW_ML_DATA_ROOT"])["s3"]
    minio = services["minio"]["environment"]
    assert s3["endpoint_url"] == "http://minio:9000"
    assert services["minio"]["command"][:2] == ["server", "/data"]
    assert S3Hook().conn_config.aws_access_key_id == minio["MINIO_ROOT_USER"]
    assert S3Hook().conn_config.aws_secret_access_key == minio["MINIO_ROOT_PASSWORD"]


def test_hosted_mlflow_and_real_s3_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from airflow_ml.hooks.mlflow import MlflowHook

    env = compose(
        {
            "AIRFLOW_ML_MLFLOW_TRACKING_URI": "https://mlflow.example.com",
            "AIRFLOW_ML_MLFLOW_TOKEN": "t0ken",
            "AIRFLOW_ML_S3_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com",
            "AIRFLOW_ML_S3_REGION": "eu-west-1",
            "AIRFLOW_ML_S3_ACCESS_KEY_ID": "",
            "AIRFLOW_ML_S3_SECRET_ACCESS_KEY": "",
        }
    )["services"]["airflow-worker"]["environment"]
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", env["AIRFLOW_CONN_AWS_DEFAULT"])

    hook = MlflowHook()
    assert (hook.tracking_uri, hook._settings["token"]) == ("https://mlflow.example.com", "t0ken")
    config = S3Hook().conn_config
    assert config.aws_access_key_id is None, "empty keys must leave boto's credential chain (an instance role)"
    assert (config.endpoint_url, config.region_name) == ("https://s3.eu-west-1.amazonaws.com", "eu-west-1")


def test_mlflow_server_stores_runs_in_postgres_and_artifacts_in_a_minio_bucket(services: dict[str, Any]) -> None:
    from mlflow.cli import server

    args = services["mlflow"]["command"]
    assert args[:2] == ["mlflow", "server"]
    params = server.make_context("server", list(args[2:])).params  # refuses an option mlflow does not have
    store, postgres = urlsplit(params["backend_store_uri"]), services["postgres"]["environment"]
    assert (store.scheme, store.hostname, store.port) == ("postgresql", "postgres", 5432)
    assert (store.username, store.password, store.path) == (
        postgres["MLFLOW_DB_USER"],
        postgres["MLFLOW_DB_PASSWORD"],
        f"/{postgres['MLFLOW_DB_NAME']}",
    )
    assert "./deploy/postgres:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]
    assert (REPO / "deploy/postgres/10-mlflow-database.sh").is_file()
    assert params["serve_artifacts"]
    assert params["host"] == "0.0.0.0"
    artifacts = urlsplit(params["artifacts_destination"])
    assert artifacts.scheme == "s3"
    assert f"local/{artifacts.hostname}" in buckets(services)
    env, minio = services["mlflow"]["environment"], services["minio"]["environment"]
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    image = (REPO / "deploy/mlflow/Dockerfile").read_text(encoding="utf-8")
    pins = {"mlflow": "MLFLOW_VERSION", "boto3": "BOTO3_VERSION", "psycopg2-binary": "PSYCOPG2_VERSION"}
    for package, arg in pins.items():
        assert f"ARG {arg}={locked(package)}\n" in image, f"deploy/mlflow/Dockerfile: pin {package} to uv.lock's"
    assert services["mlflow"]["build"]["context"] == "./deploy/mlflow"


def buckets(services: dict[str, Any]) -> list[str]:
    """The buckets ``minio-init`` makes (``mc mb ... local/<bucket>``)."""
    line = next(line for line in services["minio-init"]["command"][1].splitlines() if line.startswith("mc mb"))
    return [word for word in line.split() if word.startswith("local/")]


def test_what_the_code_reads_from_the_environment_is_set(services: dict[str, Any]) -> None:
    from airflow_ml.data.demo import DEMO_CITIES
    from airflow_ml.settings import data_root
    from airflow_ml.templates import load_city_configs

    sources = [*REPO.glob("airflow_ml/**/*.py"), *REPO.glob("dags/*.py"), *REPO.glob("plugins/**/*.py")]
    read = {
        name for path in sources for name in re.findall(r'"(AIRFLOW_ML_[A-Z_]+)"', path.read_text(encoding="utf-8"))
    }
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    for name in sorted(read):
        for service in AIRFLOW_SERVICES:
            env = services[service]["environment"]
            assert name in env or f"{name}=${{{name}}}" in dockerfile, f"{service} does not set {name}"
    root = data_root(services["airflow-worker"]["environment"]["AIRFLOW_ML_DATA_ROOT"])
    bucket, prefix = urlsplit(root).hostname, urlsplit(root).path
    assert root.startswith("s3://")
    assert f"local/{bucket}" in buckets(services)
    upload = services["airflow-ml-demo-upload"]["command"][1]
    assert f"mc mirror --overwrite /opt/airflow/demo-data/raw local/{bucket}{prefix}/raw" in upload
    configs = [config for config in load_city_configs(REPO / "dag_templates")[0] if config.city in DEMO_CITIES]
    assert configs
    for config in configs:  # the demo writes <root>/raw/trips/<city>, where each demo city's DAG reads
        assert config.source_uri(root) == f"{root}/raw/trips/{config.city}"


def test_the_workers_start_warm_through_the_deployed_local_settings(services: dict[str, Any]) -> None:
    from airflow_ml.worker_preload import forks_tasks, preload_setting

    image_repo = Path("/opt/airflow-ml")  # the Dockerfile copies the repository there
    assert f"COPY --chown=airflow:0 . {image_repo}/" in (REPO / "Dockerfile").read_text(encoding="utf-8")
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        folder = Path(env["PYTHONPATH"])
        assert folder.is_relative_to(image_repo), f"{name}: PYTHONPATH {folder} is not in the image's copy of the repo"
        settings = REPO / folder.relative_to(image_repo) / "airflow_local_settings.py"
        assert "\npreload_for_workers()\n" in settings.read_text(encoding="utf-8"), settings
        assert preload_setting(env) == "auto"
    worker, scheduler = services["airflow-worker"], services["airflow-scheduler"]
    executor = worker["environment"]["AIRFLOW__CORE__EXECUTOR"]
    assert forks_tasks(["airflow", *shlex.split(worker["command"])], executor)
    # With the CeleryExecutor the scheduler runs no task: it imports nothing more.
    assert not forks_tasks(["airflow", *shlex.split(scheduler["command"])], executor)


def test_the_demo_data_command_writes_what_the_upload_mirrors(services: dict[str, Any], tmp_path: Path) -> None:
    from airflow_ml.cli import main

    argv = shlex.split(services["airflow-ml-demo-data"]["command"][2])
    assert argv[:2] == ["airflow-ml", "demo-data"]
    root = argv[argv.index("--root") + 1]
    assert f" {root}/raw " in services["airflow-ml-demo-upload"]["command"][1]
    argv[argv.index("--root") + 1] = str(tmp_path)
    assert main([*argv[1:], "--cities", "berlin", "--scale", "0.05"]) == 0
    assert list((tmp_path / "raw" / "trips" / "berlin").glob("date=*/*.parquet"))


def test_the_serving_service_runs_airflow_ml_serve_as_the_cli_parses_it(services: dict[str, Any]) -> None:
    from airflow_ml.cli.commands import build_parser

    service = services["serving"]
    assert service["command"][:2] == ["bash", "-c"]
    argv = shlex.split(service["command"][2])
    assert argv[:2] == ["airflow-ml", "serve"]
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"'{service['command'][2]}' is not a command of airflow-ml")
    assert args.host == "0.0.0.0"
    # The published port, the healthcheck and the server agree; the templates are where the image puts them.
    assert service["ports"] == [f"{env_example()['AIRFLOW_ML_SERVE_PORT']}:{args.port}"]
    assert service["healthcheck"]["test"][-1] == f"http://localhost:{args.port}/v1/health"
    assert f"{args.root}:ro" in {volume.split(":", 1)[1] for volume in compose()["x-airflow-common"]["volumes"]}
    assert "cp -r /opt/airflow-ml/dags /opt/airflow-ml/dag_templates" in (REPO / "Dockerfile").read_text("utf-8")
    # The registry and the data root come from the common environment, as for the Airflow services.
    env = service["environment"]
    for name in ("AIRFLOW_CONN_MLFLOW_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_ML_DATA_ROOT", *TELEMETRY_OFF):
        assert env[name] == services["airflow-worker"]["environment"][name], name
    assert args.conn_id == "mlflow_default"
    assert service["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_locked_airflow_on_an_allowed_python() -> None:
    from packaging.specifiers import SpecifierSet

    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG (\w+)=(\S*)$", text, flags=re.MULTILINE))
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert set(bases) == {"apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}"}
    assert args["AIRFLOW_VERSION"] == locked("apache-airflow"), "Dockerfile: AIRFLOW_VERSION must be uv.lock's"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    assert args["PYTHON_VERSION"] in SpecifierSet(requires)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert f"UV_VERSION := {args['UV_VERSION']}\n" in makefile, "Dockerfile: use the Makefile's uv version"
    assert "uv export --frozen --no-dev" in text
    # Every extra of pyproject goes into the image: the compose stack runs on PostgreSQL (the prediction table).
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    missing = [extra for extra in extras if f"--extra {extra}" not in text]
    assert not missing, f"Dockerfile: export the extras {missing} with `uv export --extra <name>`"
    assert "-r /tmp/requirements.txt" in text
    mlflow_image = (REPO / "deploy/mlflow/Dockerfile").read_text(encoding="utf-8")
    assert f"FROM python:{args['PYTHON_VERSION']}-slim" in mlflow_image, "run MLflow's server on the workers' Python"


def test_paths_and_volumes_agree_with_the_repository(services: dict[str, Any]) -> None:
    top_volumes = set(compose()["volumes"])
    env = services["airflow-worker"]["environment"]
    dags = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
    plugins = Path(env["AIRFLOW__CORE__PLUGINS_FOLDER"])
    assert plugins == dags.parent / "plugins"
    mounts = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source in ("./logs", "./config"):  # made at the first start, as in the official file; not baked in
                ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
                assert f"/{source[2:]}/" in ignored, f"{source} must stay out of git"
                mounts[source[2:]] = Path(target)
            elif source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"
                mounts[Path(source).name] = Path(target)
            else:
                assert source in top_volumes, f"{name} uses volume {source!r}, not declared under volumes:"
    # dags/*.py find dag_templates/ and expectations/ beside their own folder.
    assert '_REPO / "dag_templates"' in (REPO / "dags/retrain_shard_0.py").read_text(encoding="utf-8")
    assert mounts["dags"] == dags
    assert mounts["plugins"] == plugins
    assert mounts["dag_templates"] == dags.parent / "dag_templates"
    assert mounts["expectations"] == dags.parent / "expectations"
    assert mounts["logs"] == dags.parent / "logs"
    assert Path(env["AIRFLOW_CONFIG"]).parent == mounts["config"] == dags.parent / "config"
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert f"{mounts['expectations'].parent}/" in dockerfile
    assert "COPY --chown=airflow:0 . /opt/airflow-ml/" in dockerfile
    script = services["airflow-init"]["command"][1]
    assert "python /opt/airflow-ml/deploy/airflow/simple_auth_passwords.py" in script
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".venv", ".tools", "var", ".env", ".git", "logs", "config"} <= ignored
    needed = {"dags", "dag_templates", "expectations", "plugins", "deploy", "airflow_ml", "README.md", "uv.lock"}
    assert not ignored & needed, f".dockerignore leaves out what the image needs: {sorted(ignored & needed)}"


def test_secrets_are_variables_whose_local_defaults_are_documented() -> None:
    raw, documented = COMPOSE.read_text(encoding="utf-8"), env_example()
    used = set()
    pending = [raw]
    while pending:  # every reference, those nested in a default too
        text = pending.pop()
        for _, _, name, _, default in references(text):
            used.add(name)
            assert name in documented, f"docker-compose.yaml uses ${{{name}}}: document it in .env.example"
            if "${" in default:  # a default made of other settings: documented empty, so that it follows them
                assert documented[name] == "", f"{name} follows {default!r}: leave it empty in .env.example"
                pending.append(default)
            else:
                assert default == documented[name], f"{name}: compose default {default!r} != .env.example"
    assert set(documented) <= used, f".env.example documents unused {sorted(set(documented) - used)}"
    literal, position = [], 0
    for start, end, *_ in references(raw):  # what is left is literal
        literal.append(raw[position:start])
        position = end
    bare = "".join([*literal, raw[position:]])
    for key, value in re.findall(r'"?(\w+)"?:[ \t]*"?([^",}\n]*)', bare):
        if _SECRET_KEY.search(key.upper()) and key != "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE":
            assert not value.strip(), f"docker-compose.yaml: {key} has a literal value; use ${{VARIABLE:-default}}"
    for url in re.findall(r"\w+://[^\s\"']+@", bare):
        assert re.fullmatch(r"\w+://(\w*:?)@", url.replace("redis://:@", "redis://@")), f"literal password in {url}"


def test_telemetry_is_off_on_every_python_service(services: dict[str, Any]) -> None:
    python = [name for name, service in services.items() if "build" in service]
    assert {"mlflow", *AIRFLOW_SERVICES} <= set(python)
    for name in python:
        assert services[name]["environment"].items() >= TELEMETRY_OFF.items(), name


def test_docker_compose_accepts_the_file() -> None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            break
    else:
        service_missing("no `docker compose` or `docker-compose` is installed (`make test` installs docker-compose)")
    profiles = ["--profile", "demo", "--profile", "debug", "--profile", "flower", "--profile", "dask"]
    checked = subprocess.run(
        [*command, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), *profiles, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


def test_airflow_init_sets_the_admin_password_the_api_server_accepts(services: dict[str, Any], tmp_path: Path) -> None:
    """The api-server runs in a process of its own: Airflow keeps its auth manager, JWT signer and app in
    process-wide caches, and this stack's settings must not leak into the tests that run after this one."""
    init = services["airflow-init"]["environment"]
    passwords = tmp_path / "auth" / "passwords.json"
    env = {**init, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)}
    script = REPO / "deploy/airflow/simple_auth_passwords.py"
    done = subprocess.run(
        [sys.executable, str(script)], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    refused = subprocess.run(
        [sys.executable, str(script)], env={**env, "_AIRFLOW_WWW_USER_USERNAME": "root"}, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "is not among AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" in refused.stderr

    server_env = {
        **os.environ,
        **{
            key: init[key]
            for key in (
                "AIRFLOW__CORE__AUTH_MANAGER",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
                "AIRFLOW__API_AUTH__JWT_SECRET",
            )
        },
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    health = urlsplit(services["airflow-apiserver"]["healthcheck"]["test"][-1]).path
    user, password = init["_AIRFLOW_WWW_USER_USERNAME"], init["_AIRFLOW_WWW_USER_PASSWORD"]
    probe = (
        "import json, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from airflow.api_fastapi.app import create_app\n"
        "client = TestClient(create_app())\n"
        "user, password, health = sys.argv[1:4]\n"
        "print(json.dumps([client.get(health).status_code,\n"
        "    client.post('/auth/token', json={'username': user, 'password': password}).status_code,\n"
        "    client.post('/auth/token', json={'username': user, 'password': 'wrong'}).status_code]))\n"
    )
    answered = subprocess.run(
        [sys.executable, "-c", probe, user, password, health],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert answered.returncode == 0, answered.stderr[-3000:]
    healthy, right, wrong = json.loads(answered.stdout.strip().splitlines()[-1])
    assert healthy == 200, "the api-server's healthcheck must need no login"
    assert (right, wrong) == (201, 401)


@pytest.mark.services
def test_postgres_init_script_creates_mlflows_role_and_database() -> None:
    import psycopg2

    if not shutil.which("psql"):
        service_missing("psql is not installed (apt-get install postgresql-client)")
    try:
        admin = psycopg2.connect(POSTGRES_DSN, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        service_missing(f"PostgreSQL at {POSTGRES_DSN} is not reachable ({str(exc).strip()})")
        raise
    admin.autocommit = True
    dsn, suffix = urlsplit(POSTGRES_DSN), uuid.uuid4().hex[:10]
    role, database = f"mlflow_{suffix}", f"mlflow_db_{suffix}"
    env = {
        "PATH": "/usr/bin:/bin",
        "PGHOST": dsn.hostname or "127.0.0.1",
        "PGPORT": str(dsn.port or 5432),
        "POSTGRES_USER": dsn.username or "postgres",
        "POSTGRES_DB": dsn.path.lstrip("/"),
        "MLFLOW_DB_USER": role,
        "MLFLOW_DB_NAME": database,
        "MLFLOW_DB_PASSWORD": "it's a 'quoted' pass",
    }
    try:
        done = subprocess.run(
            ["bash", str(REPO / "deploy/postgres/10-mlflow-database.sh")], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_userbyid(datdba), (SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s) "
                "FROM pg_database WHERE datname = %s",
                (role, database),
            )
            assert cursor.fetchone() == (role, True)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}"')
            cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def test_every_host_port_is_a_variable_and_the_mlflow_links_follow_its_port(services: dict[str, Any]) -> None:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    published = {name: service["ports"] for name, service in raw.items() if "ports" in service}
    assert set(published) >= {"minio", "mlflow", "airflow-apiserver", "flower", "serving"}
    for name, ports in published.items():
        for port in ports:
            host = port.rsplit(":", 1)[0]
            assert re.fullmatch(r"\$\{\w+_PORT:-\d+\}", host), f"{name}: host port {host!r} is not a ${{..._PORT}}"
    moved = compose({"MLFLOW_PORT": "5100"})["services"]
    assert moved["mlflow"]["ports"] == ["5100:5000"]
    assert moved["airflow-worker"]["environment"]["AIRFLOW_ML_MLFLOW_UI_URL"] == "http://localhost:5100"
    assert services["airflow-worker"]["environment"]["AIRFLOW_ML_MLFLOW_UI_URL"] == "http://localhost:5000"
    hosted = compose({"MLFLOW_PORT": "5100", "AIRFLOW_ML_MLFLOW_UI_URL": "https://mlflow.example.com"})
    assert (
        hosted["services"]["airflow-worker"]["environment"]["AIRFLOW_ML_MLFLOW_UI_URL"] == "https://mlflow.example.com"
    )


def test_init_checks_resources_and_makes_the_mounted_folders_and_the_cli_waits_for_the_databases(
    services: dict[str, Any],
) -> None:
    script = services["airflow-init"]["command"][1]
    for check in ("mem_available < 4000", "cpus_available < 2", "disk_available < one_meg * 10"):
        assert check in script
    assert "mkdir -p /opt/airflow/logs /opt/airflow/config" in script
    assert "airflow config list" in script  # writes the default airflow.cfg into ./config
    assert set(services["airflow-cli"]["depends_on"]) == {"redis", "postgres"}


def test_the_dask_profile_runs_a_scheduler_and_two_workers_the_dask_connection_reaches(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed.cli.dask_scheduler import main as dask_scheduler
    from distributed.cli.dask_worker import main as dask_worker

    from airflow_ml.hooks.dask_cluster import DaskClusterHook
    from airflow_ml.ml.dask_client import WORKER_ENVIRON
    from airflow_ml.templates.dask_spec import MEMORY_PATTERN

    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["profiles"] == worker["profiles"] == ["dask"]
    assert worker["deploy"]["replicas"] == 2  # one worker per container: a fixed listen_port stays usable
    # The commands as the dask CLI parses them; the workers join the scheduler's port.
    argv = shlex.split(scheduler["command"][2])
    assert argv[:2] == ["dask", "scheduler"]
    options = dask_scheduler.make_context("dask scheduler", argv[2:]).params
    argv = shlex.split(worker["command"][2])
    assert argv[:2] == ["dask", "worker"]
    joined = dask_worker.make_context("dask worker", argv[2:]).params
    assert joined["scheduler"] == f"tcp://dask-scheduler:{options['port']}"
    assert (int(joined["n_workers"]), joined["nthreads"]) == (1, int(env_example()["DASK_WORKER_THREADS"]))
    assert MEMORY_PATTERN.match(joined["memory_limit"])
    assert scheduler["ports"] == [f"{env_example()['DASK_DASHBOARD_PORT']}:{options['dashboard_address'][1:]}"]
    # The image of the Airflow services (the same airflow_ml and LightGBM), telemetry off.
    assert scheduler["image"] == worker["image"] == services["airflow-worker"]["image"]
    for service in (scheduler, worker):
        assert service["environment"].items() >= TELEMETRY_OFF.items()
    # The workers' environment is what a task's LocalCluster gives its workers (Arrow's system allocator).
    assert worker["environment"].items() >= WORKER_ENVIRON.items()
    # The Airflow services' dask_default connection is this scheduler, as the hook reads it.
    monkeypatch.setenv(
        "AIRFLOW_CONN_DASK_DEFAULT", services["airflow-worker"]["environment"]["AIRFLOW_CONN_DASK_DEFAULT"]
    )
    assert DaskClusterHook().get_conn().address == joined["scheduler"]


def test_the_scheduler_follows_a_task_quickly_with_the_setting_the_benchmark_measures(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.configuration import conf

    benchmark = _scheduler_benchmark()
    shipped = benchmark.shipped_settings(COMPOSE)
    name = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"
    assert shipped == {name: services["airflow-scheduler"]["environment"][name]}  # what compose gives the scheduler
    monkeypatch.setenv(name, shipped[name])
    # A name Airflow reads (a misspelt one would leave its 1 s default), with a value shorter than that default.
    assert 0 < conf.getfloat("scheduler", "scheduler_idle_sleep_time") < 1
    monkeypatch.delenv(name)
    assert conf.getfloat("scheduler", "scheduler_idle_sleep_time") == 1.0


def test_the_benchmark_names_a_shipped_setting_the_compose_file_lacks(tmp_path: Path) -> None:
    benchmark = _scheduler_benchmark()
    compose = tmp_path / "docker-compose.yaml"
    compose.write_text("x-airflow-common:\n  environment:\n    AIRFLOW__CORE__EXECUTOR: CeleryExecutor\n")
    with pytest.raises(SystemExit, match="sets no AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"):
        benchmark.shipped_settings(compose)


def _scheduler_benchmark() -> Any:
    """benchmarks/retrain_scheduler.py, which measures a deployment with the settings this file ships."""
    return load_benchmark_script("retrain_scheduler")
