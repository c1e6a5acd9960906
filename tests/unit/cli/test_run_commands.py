"""``airflow-ml run``, ``status``, ``env`` and ``demo``'s reset: bad input, the embedded default, the demo's own folder.

A real DAG run through the command is in tests/integration/test_cli_run.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_ml import embedded
from airflow_ml.cli import main
from airflow_ml.cli.run_summary import DECISION_FILE, DRIFT_FILE, HEALTH_FILE, VERDICT_FILE
from airflow_ml.data.demo import batch_days, write_demo_data
from airflow_ml.data.refusal import record_refusal
from airflow_ml.data.snapshot import read_snapshot, take_snapshot, write_json
from airflow_ml.validation.runner import validate_frame
from tests.support import REPO
from tests.support.project import EMBEDDED_KEYS, airflow_ml, clean_env, make_project


def exports(text: str) -> dict[str, str]:
    """The variables of ``export NAME=value`` lines, read as a POSIX shell would."""
    return dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in text.splitlines())


def row(table: str, city: str) -> list[str]:
    """The cells of ``city``'s row of a summary table, cut where its dashed line puts the columns."""
    lines = table.splitlines()
    starts = [m.start() for m in re.finditer(r"-+", next(line for line in lines if line.startswith("---")))]
    line = next(line for line in lines if line.startswith(city + " "))
    return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line)], strict=True)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder with berlin and lisbon."""
    return make_project(tmp_path / "project")


# --- the embedded default, one module for the CLI and the Makefile -------------------------------------------------


def test_env_prints_the_embedded_default_of_the_working_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in EMBEDDED_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(project)
    assert main(["env"]) == 0
    env = exports(capsys.readouterr().out)
    var = project.resolve() / "var"
    assert env["AIRFLOW_HOME"] == str(var / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(project.resolve() / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW_ML_DATA_ROOT"] == str(var / "data")
    connection = json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    assert connection == {
        "conn_type": "mlflow",
        "extra": {
            "tracking_uri": f"sqlite:///{var}/mlflow/mlflow.db",
            "artifact_root": f"file://{var}/mlflow/artifacts",
        },
    }
    assert env["MLFLOW_BACKEND_STORE_URI"] == connection["extra"]["tracking_uri"]
    assert (var / "airflow").is_dir()
    assert (var / "data").is_dir()
    assert (var / "mlflow" / "artifacts").is_dir()

    assert main(["env", "--demo"]) == 0
    demo = exports(capsys.readouterr().out)
    assert demo["AIRFLOW_HOME"] == str(var / "demo" / "airflow")
    assert demo["AIRFLOW_ML_DATA_ROOT"] == str(var / "demo" / "data")
    assert f"{var}/demo/mlflow/mlflow.db" in demo["AIRFLOW_CONN_MLFLOW_DEFAULT"]


def test_an_explicit_variable_wins_except_for_the_demos_own_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in EMBEDDED_KEYS:  # AIRFLOW_HOME unset: the embedded default, under what the environment sets
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(project)
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "s3://my-bucket/ml")
    monkeypatch.setenv("DO_NOT_TRACK", "0")
    assert main(["env"]) == 0
    env = exports(capsys.readouterr().out)
    assert env["AIRFLOW_ML_DATA_ROOT"] == "s3://my-bucket/ml"
    assert env["DO_NOT_TRACK"] == "0"
    assert main(["env", "--demo"]) == 0
    demo = exports(capsys.readouterr().out)
    assert demo["AIRFLOW_ML_DATA_ROOT"] == str(project.resolve() / "var" / "demo" / "data")  # never the user's
    assert demo["DO_NOT_TRACK"] == "0"  # telemetry stays the user's choice


def test_a_users_own_airflow_home_is_used_whole_and_the_command_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Their airflow.cfg, their database's mlflow_default and their data root: none may be replaced by the
    # embedded default's (an AIRFLOW_CONN_MLFLOW_DEFAULT variable would win over their database's connection).
    for key in EMBEDDED_KEYS:
        monkeypatch.delenv(key, raising=False)
    home = project / "their-airflow"
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.chdir(project)

    assert main(["env"]) == 0
    out, err = capsys.readouterr()
    assert exports(out) == embedded.TELEMETRY_OFF  # telemetry off, nothing else
    assert f"AIRFLOW_HOME is set ({home}): using your own Airflow environment as it is" in err
    assert "the embedded default (var/) applies only when AIRFLOW_HOME is unset" in err
    assert not (project / "var").exists()

    assert main(["status"]) == 2  # no data root of theirs: the embedded one is not guessed
    assert "give --data-root or set AIRFLOW_ML_DATA_ROOT" in capsys.readouterr().err
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(project / "their-data"))
    assert main(["status"]) == 0
    assert "no run yet" in capsys.readouterr().out

    assert main(["env", "--demo"]) == 0  # the demo keeps its own folder whatever the environment
    demo = exports(capsys.readouterr().out)
    assert demo["AIRFLOW_HOME"] == str(project.resolve() / "var" / "demo" / "airflow")


def test_run_in_a_users_own_airflow_home_neither_migrates_it_nor_adds_the_embedded_default(project: Path) -> None:
    home = project / "their-airflow"
    home.mkdir()
    command = [sys.executable, "-m", "airflow_ml.cli", "run", "ride_duration.berlin"]

    # Their own DAGs folder (airflow.cfg's default, $AIRFLOW_HOME/dags) does not hold the project's DAGs.
    theirs = subprocess.run(
        command, cwd=project, env=clean_env(AIRFLOW_HOME=str(home)), capture_output=True, text=True, timeout=300
    )
    assert theirs.returncode == 2, theirs.stderr[-3000:]
    assert f"AIRFLOW_HOME is set ({home}): using your own Airflow environment" in theirs.stderr
    assert f"no DAG 'ride_duration.berlin' in {home}/dags" in theirs.stderr

    # Given their DAGs folder, their (new, empty) SQLite database is theirs to migrate, not the command's.
    env = clean_env(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(project / "dags"))
    unmigrated = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert unmigrated.returncode == 1, unmigrated.stderr[-3000:]
    assert "is not migrated; run `airflow db migrate` first" in unmigrated.stderr
    assert not (home / "db-migrate.log").exists()
    assert not (project / "var").exists()  # no embedded data root, MLflow store or Airflow home


def test_the_makefile_takes_the_embedded_default_from_the_module(project: Path) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    set_there = {key for key in EMBEDDED_KEYS if re.search(rf"\b{key}\s*:?=", makefile)}
    assert set_there == set(embedded.TELEMETRY_OFF)  # exported for every tool make runs; the rest is the module's
    assert 'eval "$$($(BIN)/airflow-ml env --demo)"' in makefile
    # What `make ui` evals is what `airflow-ml demo` runs with, quoting included.
    shell = subprocess.run(
        ["bash", "-c", f'eval "$({sys.executable} -m airflow_ml.cli env --demo)" && env -0'],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = dict(item.split("=", 1) for item in shell.stdout.split("\0") if "=" in item)
    wanted = embedded.embedded_environment(project, demo=True)
    assert {k: seen.get(k) for k in wanted} == wanted


def test_the_modules_that_set_the_environment_import_no_airflow() -> None:
    modules = "airflow_ml.cli, airflow_ml.cli.commands, airflow_ml.cli.run_commands, airflow_ml.embedded"
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=True)
    assert not [m for m in json.loads(done.stdout.replace("'", '"')) if m.split(".")[0] == "airflow"]


# --- make demo never deletes a user's data --------------------------------------------------------------------------


def test_the_demo_reset_keeps_a_users_data_and_says_what_it_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_data = tmp_path / "var" / "data" / "raw" / "trips" / "porto" / "date=2026-01-05" / "part.parquet"
    user_registry = tmp_path / "var" / "mlflow" / "mlflow.db"
    demo_data = tmp_path / "var" / "demo" / "data" / "raw" / "trips" / "berlin" / "date=2026-01-05" / "part.parquet"
    demo_registry = tmp_path / "var" / "demo" / "mlflow" / "mlflow.db"
    demo_airflow = tmp_path / "var" / "demo" / "airflow" / "airflow.db"
    for path in (user_data, user_registry, demo_data, demo_registry, demo_airflow):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"rows")

    deleted = embedded.reset_demo(tmp_path)

    assert user_data.read_bytes() == b"rows"
    assert user_registry.read_bytes() == b"rows"
    assert not demo_data.exists()
    assert not demo_registry.exists()
    assert demo_airflow.exists()  # the demo's run history stays
    assert deleted == [tmp_path.resolve() / "var" / "demo" / "data", tmp_path.resolve() / "var" / "demo" / "mlflow"]
    said = capsys.readouterr().out
    assert "var/demo/data/" in said
    assert "var/demo/mlflow/" in said
    assert embedded.reset_demo(tmp_path) == []  # nothing left to reset: nothing said
    assert capsys.readouterr().out == ""


def test_make_demo_deletes_nothing_itself() -> None:
    """`make demo` leaves resetting to `airflow-ml demo` (above); its recipe removes no file."""
    planned = subprocess.run(["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    commands = planned.stdout.splitlines()
    assert any(c.endswith("airflow-ml demo") for c in commands), commands
    assert not [c for c in commands if c.split()[:1] == ["rm"] or " rm " in c], commands
    cleaned = subprocess.run(["make", "-n", "clean"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    removed = [word for line in cleaned.stdout.splitlines() if line.startswith("rm ") for word in line.split()[2:]]
    assert f"{REPO}/var" not in removed
    assert f"{REPO}/var/demo" in removed


# --- airflow-ml run: bad input exits 2 before anything runs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conf", '{"num_boost_round": 50,}'], "--conf is not valid JSON: Expecting property name"),
        (["--conf", '{"a": 1} x'], "at line 1 column 10 (character 9)"),
        (["--conf", "[1, 2]"], "--conf must be a JSON object"),
        (["--window-start", "2026-02-30"], "--window-start '2026-02-30' is not a day of the calendar"),
        (["--window-end", "05/01/2026"], "--window-end '05/01/2026' is not a date YYYY-MM-DD"),
        (["--window-start", "2026-03-01", "--window-end", "2026-02-01"], "starts (2026-03-01) after it ends"),
        (
            ["--conf", '{"window_start": "2026-01-05"}', "--window-start", "2026-01-06"],
            "--window-start '2026-01-06' and --conf's window_start '2026-01-05' disagree",
        ),
    ],
)
def test_run_refuses_bad_input_before_running(
    args: list[str], message: str, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    assert main(["run", "ride_duration.berlin", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (project / "var").exists()  # refused before the environment, Airflow or any run


def test_run_names_an_unknown_dag_and_an_unknown_conf_key_with_a_close_match(project: Path) -> None:
    typo = airflow_ml("run", "ride_duration.berlni", cwd=project)
    assert typo.returncode == 2, typo.stderr[-2000:]
    assert "no DAG 'ride_duration.berlni'" in typo.stderr
    assert "did you mean 'ride_duration.berlin'?" in typo.stderr

    bare_city = airflow_ml("run", "lisbon", cwd=project)
    assert bare_city.returncode == 2
    assert "did you mean 'ride_duration.lisbon'?" in bare_city.stderr

    key = airflow_ml("run", "ride_duration.berlin", "--conf", '{"num_boost_rounds": 1}', cwd=project)
    assert key.returncode == 2, key.stderr[-2000:]
    # The very message run creation gives (CheckedConfDAG.test, the REST API's plugin, the first task).
    assert (
        "airflow-ml run: the conf of a run of ride_duration.berlin is refused, nothing runs: unknown trigger "
        "parameter 'num_boost_rounds': did you mean 'num_boost_round'? (a conf may only set the DAG's Params)"
    ) in key.stderr
    assert not list((project / "var").glob("**/snapshots")), "nothing ran"
    assert key.stdout == ""


def test_run_refuses_a_conf_that_run_creation_refuses_before_migrating_anything(project: Path) -> None:
    forced = airflow_ml("run", "ride_duration.berlin", "--conf", '{"promotion_mode": "force"}', cwd=project)

    assert forced.returncode == 2, forced.stderr[-2000:]
    assert (
        "airflow-ml run: the conf of a run of ride_duration.berlin is refused, nothing runs: promotion_mode "
        "'force' needs a reason"
    ) in forced.stderr
    assert not (project / "var" / "airflow" / "db-migrate.log").exists()  # refused before the database
    assert not (project / "var" / "airflow" / "airflow.db").exists()


# --- airflow-ml status: from what the runs left, no Airflow ---------------------------------------------------------


def test_status_shows_each_citys_latest_run_from_its_files(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_root = project / "var" / "data"
    write_demo_data(data_root, cities=["berlin"], batch="initial", scale=0.05)
    source = str(data_root / "raw" / "trips" / "berlin")
    days = batch_days("initial")
    snapshots = str(data_root / "snapshots")
    # Folder names sort the other way round from the runs' order: the latest is found by created_at.
    older = take_snapshot(source, snapshots, template="ride_duration", city="berlin", run_id="z_run", end=days[29])
    time.sleep(1.1)
    newer = take_snapshot(source, snapshots, template="ride_duration", city="berlin", run_id="a_run", end=days[-1])
    assert older.created_at < newer.created_at
    assert newer.uri < older.uri
    # The verdict of a real GX validation (of rows with impossible durations), written where the task writes it.
    suite = json.loads((REPO / "expectations" / "ride_trips.json").read_text(encoding="utf-8"))
    broken = read_snapshot(newer.uri).assign(duration_min=-1.0)
    verdict = validate_frame(broken, suite, suite_file="expectations/ride_trips.json").to_dict()
    write_json(newer.uri, VERDICT_FILE, verdict)

    monkeypatch.chdir(project)
    for key in EMBEDDED_KEYS:
        monkeypatch.delenv(key, raising=False)
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    berlin = next(line for line in lines if line.startswith("berlin"))
    assert f"{days[0]}..{days[-1]}" in berlin  # the newer run's days
    assert f"{newer.row_count:,}" in berlin.split()
    assert berlin.split()[2] == "failed"
    assert "failed (" in berlin
    assert "validation failed: " in berlin
    assert "expect_column_values_to_be_between on 'duration_min'" in berlin
    lisbon = next(line for line in lines if line.startswith("lisbon"))
    assert "no run yet" in lisbon

    assert main(["status", "--template", "ride_duration", "--data-root", str(project / "elsewhere")]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["berlin", "lisbon"]
    assert all("no run yet" in row for row in rows)


def test_status_shows_a_run_refused_at_its_snapshot_as_the_latest(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_root = project / "var" / "data"
    write_demo_data(data_root, cities=["berlin"], batch="initial", scale=0.05)
    source = str(data_root / "raw" / "trips" / "berlin")
    snapshots = str(data_root / "snapshots")
    days = batch_days("initial")
    take_snapshot(source, snapshots, template="ride_duration", city="berlin", run_id="z_run", end=days[29])
    time.sleep(1.1)
    # What the snapshot task leaves when the dataset contract refuses the next run (tested in test_snapshot_operator).
    message = (
        "the data does not match the dataset contract of the template (or the city file that overrides it):\n"
        "  - dataset.features[0]: column 'distance_km' is not in the data; did you mean 'distance'?\n"
        "the data's columns: [...]"
    )
    record_refusal(
        snapshots, template="ride_duration", city="berlin", run_id="a_refused", kind="contract", message=message,
        window_start=days[30].isoformat(), window_end=days[-1].isoformat(),
    )  # fmt: skip
    monkeypatch.chdir(project)
    for key in EMBEDDED_KEYS:
        monkeypatch.delenv(key, raising=False)

    assert main(["status", "--template", "ride_duration"]) == 0
    cells = row(capsys.readouterr().out, "berlin")
    assert cells[:9] == ["berlin", f"{days[30]}..{days[-1]}", "failed", "-", "-", "-", "-", "-", "not reached"]
    assert cells[9].startswith(
        "snapshot refused: the data does not match the dataset contract of the template (or the city file that "
        "overrides it): dataset.features[0]: column 'distance_km' is not in the data; did you mean 'distance'?"
    )

    # A later try of that run that succeeded: its manifest wins over the refusal left in the same folder.
    time.sleep(1.1)
    retried = take_snapshot(source, snapshots, template="ride_duration", city="berlin", run_id="a_refused")
    assert main(["status", "--template", "ride_duration"]) == 0
    cells = row(capsys.readouterr().out, "berlin")
    assert cells[1:4] == [f"{days[0]}..{days[-1]}", "no decision", f"{retried.row_count:,}"]
    assert cells[8:] == ["not reached", "see the task logs"]


def test_status_refuses_an_unknown_template_with_a_close_match(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    assert main(["status", "--template", "ride_duraton"]) == 2
    err = capsys.readouterr().err
    assert "no template 'ride_duraton'" in err
    assert "did you mean 'ride_duration'?" in err


def test_a_misnamed_template_file_is_no_template_for_status_suite_infer_and_new_city(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The loader reads templates/<name>.yaml only: templates/late.yml is reported, never taken for a template.
    templates = project / "dag_templates" / "templates"
    (templates / "late.yml").write_text((templates / "ride_duration.yaml").read_text(encoding="utf-8"))
    monkeypatch.chdir(project)
    said = "no template 'late' in dag_templates/templates; the file is not read: its name ends in '.yml'"

    for command in (
        ["status", "--template", "late"],
        ["suite", "infer", "--template", "late"],
        ["new-city", "late", "porto"],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert said in err, (command, err)
        assert "rename it to late.yaml (known: ['ride_duration'])" in err
    assert not (project / "dag_templates" / "cities" / "porto.yaml").exists()


def test_status_imports_no_airflow(project: Path) -> None:
    code = "import sys; from airflow_ml.cli import main; main(['status']); print('airflow' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=clean_env(), capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "False"
    assert "no run yet" in done.stdout


def test_the_file_names_status_reads_are_those_the_tasks_write() -> None:
    from airflow_ml.ml.steps.xcom_payloads import DECISION_FILE as decision
    from airflow_ml.ml.steps.xcom_payloads import DRIFT_FILE as drift
    from airflow_ml.ml.steps.xcom_payloads import HEALTH_FILE as health
    from airflow_ml.ml.steps.xcom_payloads import VERDICT_FILE as verdict

    assert (verdict, drift, decision, health) == (VERDICT_FILE, DRIFT_FILE, DECISION_FILE, HEALTH_FILE)


def test_migrating_a_fresh_embedded_database_says_one_line_and_no_library_noise(tmp_path: Path) -> None:
    # `make demo` on a fresh clone printed starlette's httpx deprecation warning and Airflow's "Waiting for
    # migrations... 0 second(s)" before the demo's first line: neither tells the user anything.
    home = tmp_path / "airflow"
    home.mkdir()
    env = clean_env(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db")
    code = "from airflow_ml.cli.run_commands import ensure_database; print(ensure_database())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "None"  # migrated, ready
    assert done.stderr.splitlines() == [
        f"migrating Airflow's SQLite database {home}/airflow.db (log: {home}/db-migrate.log)"
    ], done.stderr[-3000:]
