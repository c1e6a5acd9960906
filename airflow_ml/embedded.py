"""The embedded default: Airflow on SQLite, MLflow on SQLite with local artifacts, data on local disk.

One module computes it for a project folder (the one holding ``dags/``, ``dag_templates/``, ``expectations/`` and
``plugins/``), so that ``airflow-ml run``, ``status`` and ``demo`` and the Makefile (through ``airflow-ml env``)
can never disagree. A user's own cities keep their state in ``<project>/var/``; the demo keeps its own in
``<project>/var/demo/``, so that resetting the demo never touches a user's data or registry.

Plain Python with no Airflow import: Airflow reads its configuration when it is first imported, so the
environment is set before that.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

#: The folder of a project's state, below the project folder.
STATE_DIR = "var"
#: The demo's own state folder, below the project folder: never the user's ``var/data`` or ``var/mlflow``.
DEMO_DIR = "var/demo"
#: What a demo reset deletes, below the demo's folder: its data root and its MLflow store.
DEMO_RESET = ("data", "mlflow")
#: The MLflow UI that ``make ui`` serves, for the tasks' links.
MLFLOW_UI_URL = "http://127.0.0.1:5000"
#: Telemetry off, unless the environment says otherwise.
TELEMETRY_OFF = {
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
}


def state_folder(project: Path, *, demo: bool = False) -> Path:
    """Where the embedded default keeps Airflow's home, the MLflow store and the data root."""
    return project.resolve() / (DEMO_DIR if demo else STATE_DIR)


def embedded_environment(project: Path, *, demo: bool = False) -> dict[str, str]:
    """The environment of the embedded default for ``project``.

    Args:
        project: The project folder (``dags/``, ``plugins/`` and the state folder are below it).
        demo: The demo's own state folder (``var/demo``) instead of the user's (``var``).

    Returns:
        Variable name to value: Airflow's home, DAGs and plugins folders, no example DAGs, the data root, the
        ``mlflow_default`` connection (SQLite store and local artifacts), the MLflow UI's URL, the store as
        ``mlflow ui`` reads it (``MLFLOW_BACKEND_STORE_URI``, ``MLFLOW_DEFAULT_ARTIFACT_ROOT``) and telemetry off.
    """
    root = project.resolve()
    var = state_folder(root, demo=demo)
    tracking_uri = f"sqlite:///{var}/mlflow/mlflow.db"
    artifact_root = f"file://{var}/mlflow/artifacts"
    connection = {"conn_type": "mlflow", "extra": {"tracking_uri": tracking_uri, "artifact_root": artifact_root}}
    return {
        "AIRFLOW_HOME": str(var / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW_ML_DATA_ROOT": str(var / "data"),
        "AIRFLOW_ML_MLFLOW_UI_URL": MLFLOW_UI_URL,
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(connection),
        "MLFLOW_BACKEND_STORE_URI": tracking_uri,
        "MLFLOW_DEFAULT_ARTIFACT_ROOT": artifact_root,
        **TELEMETRY_OFF,
    }


def effective_environment(
    project: Path, *, demo: bool = False, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What ``airflow-ml run``, ``status``, ``env`` and ``demo`` set: the embedded default as a whole, or nothing of it.

    - The demo always keeps its state (Airflow home, data root, MLflow store) in its own folder, so that it never
      reads or writes a user's; only telemetry stays the environment's choice.
    - Without ``AIRFLOW_HOME``, the embedded default of ``project``; a variable the environment sets wins.
    - With ``AIRFLOW_HOME`` (a user's own Airflow), the user's environment entirely: their ``airflow.cfg``,
      connections (``mlflow_default`` from their database) and data root; only telemetry is turned off, unless
      set. Filling in the embedded MLflow connection or data root there would silently replace theirs.

    Args:
        project: The project folder.
        demo: The demo's own folder (``var/demo``).
        environ: The environment to read (``os.environ`` by default).
    """
    env = os.environ if environ is None else environ
    wanted = embedded_environment(project, demo=demo)
    if demo:
        return {name: env.get(name) or value if name in TELEMETRY_OFF else value for name, value in wanted.items()}
    if own_airflow_home(env):
        return {name: env.get(name) or value for name, value in TELEMETRY_OFF.items()}
    return {name: env.get(name) or value for name, value in wanted.items()}


def own_airflow_home(environ: Mapping[str, str] | None = None) -> str | None:
    """The user's own ``AIRFLOW_HOME`` when the environment sets one (then the embedded default is not used)."""
    return (os.environ if environ is None else environ).get("AIRFLOW_HOME") or None


def own_environment_note(environ: Mapping[str, str] | None = None) -> str | None:
    """One line saying that the user's own Airflow environment is used, and why; None on the embedded default."""
    home = own_airflow_home(environ)
    if home is None:
        return None
    return (
        f"AIRFLOW_HOME is set ({home}): using your own Airflow environment as it is (its airflow.cfg, its "
        f"connections such as mlflow_default, and AIRFLOW_ML_DATA_ROOT); the embedded default ({STATE_DIR}/) "
        "applies only when AIRFLOW_HOME is unset"
    )


def apply_environment(
    wanted: Mapping[str, str], *, force: bool = False, environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """Set ``wanted`` in the environment: only the variables not set already, unless ``force``.

    An explicit environment wins (a user's own ``AIRFLOW_HOME``, say); the demo forces its own folder.
    The folders the set variables name are created, so that SQLite and MLflow can open their files.

    Returns:
        The variables this call set.

    Raises:
        RuntimeError: when Airflow is imported already and a variable it reads would change (too late for it).
    """
    target = os.environ if environ is None else environ
    chosen = {k: v for k, v in wanted.items() if force or not target.get(k)}
    late = sorted(k for k, v in chosen.items() if k.startswith(("AIRFLOW__", "AIRFLOW_HOME")) and target.get(k) != v)
    if environ is None and late and "airflow" in sys.modules:
        raise RuntimeError(f"Airflow is imported already, too late to set {late}; set them before importing it")
    target.update(chosen)
    make_folders(chosen)
    return chosen


def make_folders(environment: Mapping[str, str]) -> None:
    """Create the state folders an embedded environment names (Airflow's home, the data root, the MLflow store)."""
    for key in ("AIRFLOW_HOME", "AIRFLOW_ML_DATA_ROOT"):
        if key in environment and "://" not in environment[key]:
            Path(environment[key]).mkdir(parents=True, exist_ok=True)
    artifacts = environment.get("MLFLOW_DEFAULT_ARTIFACT_ROOT", "")
    if artifacts.startswith("file://"):
        Path(artifacts.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


def shell_exports(environment: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines, quoted for a POSIX shell (``eval "$(airflow-ml env)"``)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in environment.items())


def reset_demo(project: Path) -> list[Path]:
    """Delete the demo's data and MLflow store (``var/demo/data``, ``var/demo/mlflow``), saying so first.

    Nothing outside the demo's own folder is touched: a user's ``var/data`` and ``var/mlflow`` (the embedded
    default of ``airflow-ml run``) stay as they are. The demo's Airflow home (its metadata database) is kept.

    Returns:
        The folders deleted.
    """
    demo = state_folder(project, demo=True)
    doomed = [demo / name for name in DEMO_RESET if (demo / name).exists()]
    if doomed:
        shown = ", ".join(_shown(p, project) for p in doomed)
        print(f"resetting the demo: deleting {shown} (its demo data and MLflow store); nothing else is touched")
    for folder in doomed:
        if folder.is_symlink() or not folder.resolve().is_relative_to(demo):
            raise RuntimeError(f"{folder} leaves the demo's folder {demo}; not deleting it")
        shutil.rmtree(folder)
    return doomed


def _shown(path: Path, project: Path) -> str:
    try:
        return str(path.relative_to(project.resolve())) + "/"
    except ValueError:
        return str(path)
