"""``airflow-ml serve`` (airflow_ml.cli.serve_command): the fleet from the YAML, and a real uvicorn server.

The last test runs the commands of docs/guides/serving.md as a user types them, on the embedded default of a
project whose berlin has a real champion: the server in its own process (on a free port instead of the docs'
8000), ``curl``, the kill switch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from airflow_ml.cli import main
from airflow_ml.cli.commands import build_parser
from airflow_ml.cli.serve_command import DEFAULT_ALIAS_TTL, DEFAULT_MAX_MODELS, DEFAULT_PORT, served_cities
from airflow_ml.exceptions import ConfigError
from airflow_ml.ml.model_cache import load_pyfunc
from airflow_ml.templates import load_city_configs
from tests.support.documented import shell, with_venv
from tests.support.processes import free_port
from tests.support.project import make_project
from tests.support.serving_models import client_of, demo_rows, register_trained
from tests.support.training_data import FEATURES


def test_the_options_and_their_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.max_models, args.alias_ttl, args.root, args.on_log_failure) == (
        "127.0.0.1",
        DEFAULT_PORT,
        DEFAULT_MAX_MODELS,
        DEFAULT_ALIAS_TTL,
        "dag_templates",
        "refuse",
    )
    args = build_parser().parse_args(["serve", "--templates-root", "t", "--max-models", "3", "--alias-ttl", "0"])
    assert (args.root, args.max_models, args.alias_ttl) == ("t", 3, 0.0)
    assert (args.log_flush_rows, args.log_flush_seconds, args.log_buffer_rows) == (5000, 10.0, 100_000)
    args = build_parser().parse_args(["serve", "--log-flush-rows", "200", "--log-flush-seconds", "2.5"])
    assert (args.log_flush_rows, args.log_flush_seconds) == (200, 2.5)
    for bad in (
        ["--max-models", "0"],
        ["--alias-ttl", "-1"],
        ["--on-log-failure", "drop"],
        ["--log-flush-rows", "0"],
        ["--log-flush-seconds", "0"],
        ["--log-buffer-rows", "0"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", *bad])


def test_the_fleet_comes_from_the_yaml_with_each_citys_log(root: Path) -> None:
    (root / "cities" / "berlin.yaml").write_text(
        "city: berlin\ntemplate: ride_duration\ndataset:\n  extra_columns: [trip_id]\n"
        "scoring:\n  source: '{data_root}/incoming/{city}'\n"
        "  output: '{data_root}/served'\n  key_columns: [trip_id]\n  keep_columns: [pickup_zone]\n",
        encoding="utf-8",
    )
    (root / "cities" / "lisbon.yaml").write_text("city: lisbon\ntemplate: ride_duration\n", encoding="utf-8")
    configs, errors = load_city_configs(root)
    assert not errors

    berlin, lisbon = served_cities(configs, "/srv/data/")

    assert (berlin.model_name, berlin.output_root, berlin.key_columns, berlin.keep_columns) == (
        "ride_duration.berlin",
        "/srv/data/served",
        ("trip_id",),
        ("pickup_zone",),
    )
    assert berlin.features == tuple(FEATURES)
    # The kinds the dataset declares: the key and kept columns are typed by them before the ids are made.
    assert (berlin.column_kinds["pickup_at"], berlin.column_kinds["trip_id"]) == ("time", "present")
    assert (berlin.column_kinds["pickup_zone"], berlin.column_kinds["distance_km"]) == ("categorical", "numeric")
    assert (lisbon.output_root, lisbon.key_columns, lisbon.keep_columns) == ("/srv/data", (), ())
    assert lisbon.parent_model_name == configs[1].parent_model_name
    with pytest.raises(ConfigError, match=r"ride_duration.berlin's prediction log goes under the data root"):
        served_cities(configs, None)


def test_no_city_or_no_data_root_stops_before_serving(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--root", str(root), "--tracking-uri", "sqlite:///unused.db"]) == 2
    assert "no city to serve in" in capsys.readouterr().err
    (root / "cities" / "berlin.yaml").write_text("city: berlin\ntemplate: ride_duration\n", encoding="utf-8")
    monkeypatch.delenv("AIRFLOW_ML_DATA_ROOT", raising=False)
    assert main(["serve", "--root", str(root), "--tracking-uri", "sqlite:///unused.db"]) == 2
    assert "give --data-root or set AIRFLOW_ML_DATA_ROOT" in capsys.readouterr().err
    small = ["--data-root", str(root), "--log-flush-rows", "20", "--log-buffer-rows", "10"]
    assert main(["serve", "--root", str(root), "--tracking-uri", "sqlite:///unused.db", *small]) == 2
    assert "--log-buffer-rows 10 is below --log-flush-rows 20" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("curl") is None, reason="the documented example uses curl")
def test_the_documented_server_answers_curl_and_the_kill_switch(tmp_path: Path) -> None:
    project = with_venv(make_project(tmp_path / "project", cities=("berlin",)))
    var = project.resolve() / "var"
    (var / "mlflow").mkdir(parents=True)
    client = client_of(f"sqlite:///{var}/mlflow/mlflow.db")
    version = register_trained(
        client, tmp_path, "ride_duration.berlin", demo_rows("berlin"), artifact_root=f"file://{var}/mlflow/artifacts"
    )
    # The commands of docs/guides/serving.md, verbatim; the server runs in its own process group, stopped at exit.
    script = """
eval "$(.venv/bin/airflow-ml env)"
set -m
{
.venv/bin/airflow-ml serve --port 8000
} > serve.log 2>&1 &
server=$!
set +m
trap 'kill -- -$server' EXIT
for i in $(seq 1 240); do curl -sf http://127.0.0.1:8000/v1/health > /dev/null && break; sleep 0.25; done
curl -s -X POST http://127.0.0.1:8000/v1/models/ride_duration/berlin:predict -H 'Content-Type: application/json' -d '{"rows": [{"distance_km": 3.9, "pickup_hour": 4, "weekday": 0, "pickup_zone": "mitte", "temperature_c": -2.8, "is_raining": 0}]}'
echo
echo ---
.venv/bin/airflow-ml disable berlin --reason "its data feed is broken"
echo ---
.venv/bin/airflow-ml serving berlin || echo exit $?
echo ---
.venv/bin/airflow-ml enable berlin
"""  # noqa: E501 - the documented commands, one a line
    # The docs' port, but a free one here: two test sessions at once (or any server on 8000) must not answer for us.
    port = free_port()
    done = shell(script.replace(":8000", f":{port}").replace("--port 8000", f"--port {port}"), cwd=project, timeout=240)
    log = (project / "serve.log").read_text(encoding="utf-8") if (project / "serve.log").exists() else ""
    assert done.returncode == 0, done.stderr[-3000:] + log[-3000:]
    answer, disabled, serving, enabled = done.stdout.split("---\n")

    body = json.loads(answer)
    assert (body["model_name"], body["model_version"], body["source"], body["logged"]) == (
        "ride_duration.berlin",
        version,
        "own",
        True,
    )
    import pandas as pd

    sent = {"distance_km": 3.9, "pickup_hour": 4, "weekday": 0, "pickup_zone": "mitte", "temperature_c": -2.8}
    row = pd.DataFrame([{**sent, "is_raining": 0}])
    assert body["predictions"] == list(load_pyfunc(client, "ride_duration.berlin", version).predict(row[FEATURES]))
    assert len(list((var / "data" / "predictions" / "ride_duration" / "berlin").glob("date=*/requests-*"))) == 1
    assert f"1 cities of ['ride_duration'] on http://127.0.0.1:{port}" in log
    assert '"POST /v1/models/ride_duration/berlin%3Apredict HTTP/1.1" 200 OK' in log  # uvicorn's access log
    assert disabled.startswith("disabled ride_duration.berlin: its data feed is broken (by ")
    assert serving.splitlines()[0].startswith("berlin: nothing: disabled by the kill switch (otherwise ")
    assert serving.splitlines()[-1] == "exit 1"
    assert enabled.startswith("enabled ride_duration.berlin: it was disabled since ")
