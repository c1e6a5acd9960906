"""airflow_ml/worker_preload.py: which processes import the tasks' libraries, the setting, and the deployed file.

What a forked task inherits is checked on a real LocalExecutor deployment (tests/services/test_local_executor.py);
here each import runs in a fresh interpreter, since the test session has imported most of these libraries already.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.worker_preload import (
    PRELOAD_ENV,
    TASK_MODULES,
    USER_SETTINGS_MODULE,
    chain_user_settings,
    forks_tasks,
    preload_for_workers,
    preload_setting,
)
from tests.support import REPO
from tests.support.processes import run_fresh_python

SETTINGS = REPO / "deploy" / "airflow" / "settings"
#: Run in a fresh interpreter as ``airflow <argv>`` would start: what was imported, and which threads run.
PROBE = """\
import json, sys, threading
sys.argv = ["airflow", *json.loads(sys.argv[1])]
{body}
heavy = ["pandas", "lightgbm", "mlflow", "great_expectations", "airflow_ml.ml.steps.train_step", "airflow_ml.factory"]
print(json.dumps({{"imported": [m for m in heavy if m in sys.modules], "threads": threading.active_count()}}))
"""


def probe(body: str, argv: list[str], **env: str) -> dict[str, object]:
    """Run ``body`` in a fresh interpreter whose ``sys.argv`` is ``["airflow", *argv]``; what it imported."""
    environ = {**os.environ, "PYTHONPATH": str(SETTINGS), **env}
    return dict(run_fresh_python(PROBE.format(body=body), json.dumps(argv), env=environ, cwd=REPO))


@pytest.mark.parametrize(
    ("argv", "executor", "forks"),
    [
        (["airflow", "scheduler"], "LocalExecutor", True),
        (["/usr/bin/airflow", "scheduler", "--num-runs", "5"], "LocalExecutor,CeleryExecutor", True),
        (["airflow", "scheduler"], "airflow.executors.local_executor.LocalExecutor", True),
        (["airflow", "scheduler"], "CeleryExecutor", False),  # the Celery workers run the tasks
        (["airflow", "scheduler"], "CeleryExecutor;team_a=LocalExecutor", True),  # multi-team executors
        (["airflow", "scheduler"], "LocalExecutor;team_a=CeleryExecutor", True),
        (["airflow", "scheduler"], "CeleryExecutor;team_a=KubernetesExecutor,CeleryExecutor", False),
        (["airflow", "scheduler"], "local:airflow.executors.local_executor.LocalExecutor", True),  # an alias
        (["airflow", "celery", "worker"], "CeleryExecutor", True),
        (["airflow", "celery", "flower"], "CeleryExecutor", False),
        (["airflow", "api-server"], "LocalExecutor", False),
        (["airflow", "dag-processor"], "LocalExecutor", False),
        (["airflow", "triggerer"], "LocalExecutor", False),
        (["airflow"], "LocalExecutor", False),
    ],
)
def test_only_the_processes_that_fork_tasks_preload(argv: list[str], executor: str, forks: bool) -> None:
    assert forks_tasks(argv, executor) is forks


def test_the_setting_is_auto_by_default_and_off_turns_it_off() -> None:
    assert preload_setting({}) == "auto"
    assert preload_setting({PRELOAD_ENV: ""}) == "auto"
    assert preload_setting({PRELOAD_ENV: " OFF "}) == "off"


def test_a_wrong_setting_names_the_variable_the_value_and_the_choices() -> None:
    with pytest.raises(ConfigError) as raised:
        preload_setting({PRELOAD_ENV: "yes"})

    message = str(raised.value)
    assert PRELOAD_ENV in message
    assert "'yes'" in message
    assert "set auto (the default) or off" in message


def test_every_task_module_is_importable() -> None:
    import importlib.util

    assert [name for name in TASK_MODULES if importlib.util.find_spec(name) is None] == []


def test_the_deployed_local_settings_warm_a_local_executor_scheduler_without_starting_a_thread() -> None:
    # Airflow imports airflow_local_settings as it starts (`import airflow`), before it forks anything: the
    # libraries must be imported by then, and nothing may run in a thread that a fork would not copy.
    found = probe("import airflow", ["scheduler"], AIRFLOW__CORE__EXECUTOR="LocalExecutor")

    assert found == {
        "imported": [
            *("pandas", "lightgbm", "mlflow", "great_expectations", "airflow_ml.ml.steps.train_step"),
            "airflow_ml.factory",
        ],
        "threads": 1,
    }


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["scheduler"], {PRELOAD_ENV: "off", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}),
        (["api-server"], {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}),
    ],
)
def test_the_deployed_local_settings_import_nothing_when_off_or_in_a_server(
    argv: list[str], env: dict[str, str]
) -> None:
    assert probe("import airflow", argv, **env)["imported"] == []


CELERY_WORKER = ["airflow", "celery", "worker"]


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog``, with Airflow imported first: its first import configures logging and would drop the capture."""
    import airflow.configuration  # noqa: F401

    return caplog


def test_a_module_that_fails_to_import_is_logged_with_the_fix_and_the_rest_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A broken library must not take the scheduler or a Celery worker down: a missing module (ImportError) and a
    # missing shared library (lightgbm's loader raises OSError for libgomp.so.1) are both logged and skipped.
    (tmp_path / "airflow_ml_test_broken_native.py").write_text(
        "raise OSError('libgomp.so.1: cannot open shared object file: No such file or directory')\n"
    )
    (tmp_path / "airflow_ml_test_needs_native.py").write_text("import airflow_ml_test_broken_native\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = (
        *("airflow_ml_test_no_such_module", "airflow_ml_test_broken_native"),
        *("json", "airflow_ml_test_needs_native"),
    )

    with caplog.at_level(logging.ERROR, logger="airflow_ml.worker_preload"):
        imported = preload_for_workers(argv=CELERY_WORKER, environ={}, modules=modules)

    assert imported == ("json",)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 2
    assert "airflow_ml_test_no_such_module (ModuleNotFoundError: No module named" in messages[0]
    # One line per cause, naming every module it failed.
    assert "airflow_ml_test_broken_native, airflow_ml_test_needs_native (OSError: libgomp.so.1: cannot" in messages[1]
    assert all(f"repair the install, or set {PRELOAD_ENV}=off" in m for m in messages)


def test_a_wrong_setting_is_ignored_with_a_warning_where_no_task_is_forked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_ml.worker_preload"):
        imported = preload_for_workers(
            argv=["airflow", "api-server"], environ={PRELOAD_ENV: "bogus"}, modules=("json",)
        )

    assert imported == ()
    assert [r.getMessage() for r in caplog.records] == [
        f"{PRELOAD_ENV}='bogus' is not one of auto, off: set auto (the default) or off; ignored here, since this "
        "process runs no task"
    ]


def test_a_wrong_setting_is_an_error_where_tasks_are_forked() -> None:
    with pytest.raises(ConfigError, match="'bogus' is not one of auto, off"):
        preload_for_workers(argv=CELERY_WORKER, environ={PRELOAD_ENV: "bogus"}, modules=("json",))


USER_SETTINGS = """\
__all__ = ["task_policy", "STATE_COLORS"]
STATE_COLORS = {"queued": "darkgray"}


def task_policy(task):
    task.policed = True


def _private():
    pass
"""


def test_a_users_settings_file_is_loaded_and_its_names_re_exported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "airflow_local_settings.py").write_text(USER_SETTINGS)
    namespace: dict[str, object] = {"__file__": str(SETTINGS / "airflow_local_settings.py")}

    with caplog.at_level(logging.WARNING, logger="airflow_ml.worker_preload"):
        loaded = chain_user_settings(namespace, tmp_path)

    assert loaded == str(tmp_path / "airflow_local_settings.py")
    assert sorted(n for n in namespace if n != "__file__") == ["STATE_COLORS", "task_policy"]
    assert namespace["task_policy"] is sys.modules[USER_SETTINGS_MODULE].task_policy
    assert [r.getMessage() for r in caplog.records] == [
        f"airflow-ml's airflow_local_settings also loaded your {loaded} (as module {USER_SETTINGS_MODULE}): "
        "its STATE_COLORS, task_policy apply"
    ]


def test_no_users_settings_file_or_the_deployed_file_itself_loads_nothing(tmp_path: Path) -> None:
    assert chain_user_settings({}, tmp_path) is None
    assert chain_user_settings({"__file__": str(SETTINGS / "airflow_local_settings.py")}, SETTINGS) is None


def test_the_deployed_local_settings_keep_the_users_cluster_policy(tmp_path: Path) -> None:
    # As compose runs it: the deployed folder on PYTHONPATH, the user's file in the mounted $AIRFLOW_HOME/config.
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "airflow_local_settings.py").write_text(USER_SETTINGS)
    body = (
        "import airflow, types\n"
        "from airflow import settings\n"
        "task = types.SimpleNamespace()\n"
        "settings.get_policy_plugin_manager().hook.task_policy(task=task)\n"
        "assert getattr(task, 'policed', False), 'the user task_policy did not run'\n"
        "assert settings.STATE_COLORS == {'queued': 'darkgray'}, settings.STATE_COLORS\n"
    )

    assert probe(body, ["api-server"], AIRFLOW_HOME=str(tmp_path))["imported"] == []
