"""A model's saved environment against this process's (airflow_ml.ml.model_requirements), on models MLflow saved."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from airflow_ml.ml.model_requirements import environment_mismatches, warn_of_environment_mismatches
from tests.support.processes import run_fresh_python

ROWS = pd.DataFrame({"x": [1.0, 2.0]})


def saved_model(folder: Path, requirements: list[str]) -> Path:
    """A real model saved by MLflow with these pip requirements; returns its folder."""
    import mlflow.sklearn
    from sklearn.dummy import DummyRegressor

    model = DummyRegressor(strategy="constant", constant=3.0).fit(ROWS, [0.0, 0.0])
    mlflow.sklearn.save_model(model, str(folder), pip_requirements=requirements)
    return folder


def with_python(folder: Path, version: str) -> Path:
    """The model in ``folder``, its MLmodel saying it was saved with Python ``version``."""
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["python_version"] = version
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return folder


def test_a_model_saved_here_matches_this_environment(tmp_path: Path) -> None:
    import sklearn

    folder = saved_model(tmp_path / "model", [f"scikit-learn=={sklearn.__version__}", "pandas", "mlflow>=2"])

    assert environment_mismatches(folder) == []


def test_each_unsatisfied_requirement_is_named_with_what_is_installed_and_what_the_model_needs(tmp_path: Path) -> None:
    import sklearn

    folder = saved_model(tmp_path / "model", ["scikit-learn==0.0.1", "airflow-ml-no-such-package==1.0", "mlflow<1"])

    assert environment_mismatches(folder) == [
        f"scikit-learn {sklearn.__version__} is installed (the model needs scikit-learn==0.0.1)",
        "airflow-ml-no-such-package is not installed (the model needs airflow-ml-no-such-package==1.0)",
        f"mlflow {__import__('mlflow').__version__} is installed (the model needs mlflow<1)",
    ]


def test_requirements_are_read_as_pip_reads_them(tmp_path: Path) -> None:
    # Comments and options dropped, continued lines joined, -r and -c files followed (MLflow writes -c
    # constraints.txt for a model logged with constraints), markers that do not apply here left unchecked.
    folder = saved_model(tmp_path / "model", ["pandas"])
    (folder / "requirements.txt").write_text(
        "# a comment\n\n--index-url https://example.invalid/simple\n"
        "./wheels/private_pkg-1.0-py3-none-any.whl\n"
        'old-only-package==1.0; python_version < "3.0"\n'
        "pandas  # trailing comment\n"
        "airflow-ml-split-\\\n  package==2.0\n"
        "-r more-requirements.txt\n"
        "--constraint constraints.txt\n"
    )
    (folder / "more-requirements.txt").write_text("airflow-ml-in-r-file==1.0\n-r requirements.txt\n")
    (folder / "constraints.txt").write_text("airflow-ml-in-c-file<3\n")

    assert environment_mismatches(folder) == [
        "airflow-ml-split-package is not installed (the model needs airflow-ml-split-package==2.0)",
        "airflow-ml-in-r-file is not installed (the model needs airflow-ml-in-r-file==1.0)",
        "airflow-ml-in-c-file is not installed (the model needs airflow-ml-in-c-file<3)",
    ]


def test_files_outside_the_model_are_never_read(tmp_path: Path) -> None:
    # A model's requirements naming /etc/... or ../.. must not make a task read, and log, what lies outside it.
    folder = saved_model(tmp_path / "model", ["pandas"])
    (tmp_path / "outside.txt").write_text("airflow-ml-outside==1.0\n")
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    (folder / "requirements.txt").write_text(
        f"-r ../outside.txt\n-r {tmp_path / 'outside.txt'}\n-r link.txt\n-c /etc/passwd\npandas\n"
    )

    assert environment_mismatches(folder) == []


def test_another_python_minor_is_named_and_a_patch_release_is_not(tmp_path: Path) -> None:
    folder = saved_model(tmp_path / "model", ["pandas"])
    running = ".".join(str(part) for part in sys.version_info[:3])

    assert environment_mismatches(with_python(folder, f"{sys.version_info[0]}.{sys.version_info[1]}.0")) == []
    assert environment_mismatches(with_python(folder, "3.8.10")) == [
        f"Python {running} runs it (the model was saved with Python 3.8.10)"
    ]


def test_a_folder_without_requirements_or_metadata_has_nothing_to_compare(tmp_path: Path) -> None:
    assert environment_mismatches(tmp_path) == []


def test_a_model_that_does_not_say_which_python_saved_it_is_named(tmp_path: Path) -> None:
    folder = with_python(saved_model(tmp_path / "model", ["pandas"]), "")
    running = ".".join(str(part) for part in sys.version_info[:3])

    assert environment_mismatches(folder) == [
        f"the model does not say which Python saved it (Python {running} runs it)"
    ]


def test_a_check_that_fails_is_a_warning_never_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = saved_model(tmp_path / "model", ["pandas"])
    (folder / "requirements.txt").write_bytes(b"pandas\n\xff\xfe not utf-8\n")

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="airflow_ml.ml.model_requirements"):
        found = warn_of_environment_mismatches(folder, "registered model 'ride_duration.lisbon' version 3")

    assert found == []
    [message] = [r.getMessage() for r in caplog.records if r.name == "airflow_ml.ml.model_requirements"]
    assert message.startswith(
        "registered model 'ride_duration.lisbon' version 3: its environment could not be compared with this "
        "process's (UnicodeDecodeError: "
    )
    assert message.endswith("it is loaded all the same")


def test_the_warning_names_the_model_and_every_mismatch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = with_python(saved_model(tmp_path / "model", ["airflow-ml-no-such-package==1.0"]), "3.8.10")

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="airflow_ml.ml.model_requirements"):
        found = warn_of_environment_mismatches(folder, "registered model 'ride_duration.lisbon' version 3")

    assert len(found) == 2
    [message] = [r.getMessage() for r in caplog.records if r.name == "airflow_ml.ml.model_requirements"]
    assert message.startswith("registered model 'ride_duration.lisbon' version 3 was saved in another environment")
    assert all(line in message for line in found)
    assert "mlflow.pyfunc.get_model_dependencies" in message


class Recorded(logging.Handler):
    """The messages of the records it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


LOAD = """\
import json, sys
import mlflow.utils.requirements_utils as mlflow_requirements
from mlflow import MlflowClient
from airflow_ml.ml.model_cache import load_pyfunc

client = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
model = load_pyfunc(client, "ride_duration.lisbon", "1")
print(json.dumps({
    "prediction": float(model.predict(__import__("pandas").DataFrame({"x": [1.0]}))[0]),
    "scanned every package": mlflow_requirements._MODULES_TO_PACKAGES is not None,
}))
"""


def test_loading_a_registered_model_warns_once_without_scanning_every_installed_package(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mlflow import MlflowClient

    from airflow_ml.ml.model_cache import load_pyfunc

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client: Any = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("serving", artifact_location=f"file://{tmp_path}/artifacts")
    run = client.create_run(experiment)
    model = saved_model(tmp_path / "model", ["airflow-ml-no-such-package==1.0"])
    client.log_artifacts(run.info.run_id, str(model), "m")
    client.create_registered_model("ride_duration.lisbon")
    client.create_model_version("ride_duration.lisbon", f"{run.info.artifact_uri}/m", run_id=run.info.run_id)

    caplog.clear()  # MLflow's save_model warned of its requirements above
    mlflows = Recorded()  # MLflow's own check logs on its logger, which does not propagate to caplog's
    logging.getLogger("mlflow.utils.requirements_utils").addHandler(mlflows)
    try:
        with caplog.at_level(logging.WARNING):
            load_pyfunc(client, "ride_duration.lisbon", "1")
    finally:
        logging.getLogger("mlflow.utils.requirements_utils").removeHandler(mlflows)
    # In a fresh process (this one has scanned long ago): the model loads and predicts, and MLflow's scan of every
    # installed distribution (0.4 s) never ran.
    fresh = run_fresh_python(LOAD, uri, env=os.environ, cwd=tmp_path, timeout=300)

    warnings = [r.getMessage() for r in caplog.records if "another environment" in r.getMessage()]
    assert warnings == [
        "registered model 'ride_duration.lisbon' version 1 was saved in another environment than this process's: "
        "airflow-ml-no-such-package is not installed (the model needs airflow-ml-no-such-package==1.0). Its "
        "predictions may differ or fail: install what it needs (mlflow.pyfunc.get_model_dependencies gives its "
        "requirements file)"
    ]
    assert mlflows.messages == []  # MLflow's own check did not run
    assert fresh == {"prediction": 3.0, "scanned every package": False}
