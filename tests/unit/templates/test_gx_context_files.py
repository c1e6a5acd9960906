"""Reading a real file-based GX Data Context (made by GX itself) as data: its suites and checkpoints, safely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.gx_context_files import load_gx_checks, with_gx_checks
from tests.support.gx_contexts import make_gx_context


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder holding ``gx/``, a file context with suite ``trips`` and checkpoint ``nightly``."""
    project = tmp_path_factory.mktemp("made")
    make_gx_context(project, webhook="http://127.0.0.1:9/never")
    return project


@pytest.fixture
def project(made: Path, tmp_path: Path) -> Path:
    """A copy of the made project that a test may change."""
    copy = tmp_path / "project"
    shutil.copytree(made, copy)
    return copy


def test_a_checkpoint_brings_its_suites_expectations_with_gx_severities_and_notes_its_skipped_actions(
    made: Path,
) -> None:
    checks = load_gx_checks(made, "gx", checkpoint="nightly", suite=None)

    expectations = checks.suite["expectations"]
    assert checks.suite["name"] == "trips"
    assert [e["type"] for e in expectations] == [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
    ]
    assert [e["meta"]["severity"] for e in expectations] == ["error", "warn"]  # GX's critical and warning
    assert all(e["meta"]["source"].startswith(str(made / "gx" / "expectations" / "trips.json")) for e in expectations)
    assert "checkpoint 'nightly'" in checks.where
    actions, asset = checks.notes
    assert "2 action(s) not run (update_data_docs 'docs', slack 'slack')" in actions
    assert "written beside the snapshot (and to MLflow when the city has an experiment)" in actions
    assert "warehouse/trips was not read" in asset


def test_a_suite_is_named_in_the_gx_folder_or_in_the_folder_holding_it(made: Path) -> None:
    by_gx = load_gx_checks(made, "gx", checkpoint=None, suite="trips")
    by_project = load_gx_checks(made, ".", checkpoint=None, suite="trips")

    assert by_gx.suite == by_project.suite
    assert len(by_gx.suite["expectations"]) == 2
    assert by_gx.notes == []


def test_the_project_suite_and_the_context_checks_make_one_suite() -> None:
    project = {"name": "ride_trips", "meta": {"owner": "data"}, "expectations": [{"type": "a"}]}
    gx = {"name": "trips", "meta": {}, "expectations": [{"type": "b"}, {"type": "c"}]}
    from airflow_ml.templates.gx_context_files import GxChecks

    merged = with_gx_checks(project, GxChecks(gx, "gx suite 'trips'"))

    assert merged["name"] == "ride_trips + trips"
    assert [e["type"] for e in merged["expectations"]] == ["a", "b", "c"]
    assert with_gx_checks(None, GxChecks(gx, "gx"))["name"] == "trips"


@pytest.mark.parametrize(
    ("checkpoint", "suite", "fragments"),
    [
        ("weekly", None, ("gx_context.checkpoint: no checkpoint 'weekly'", "known: ['nightly']", "name one of them")),
        (None, "rides", ("gx_context.suite: no expectation suite 'rides'", "known: ['trips']", "name one of them")),
    ],
)
def test_a_missing_checkpoint_or_suite_names_the_yaml_field_what_exists_and_the_fix(
    made: Path, checkpoint: str | None, suite: str | None, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_gx_checks(made, "gx", checkpoint=checkpoint, suite=suite)

    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_folder_without_a_gx_context_names_the_field_and_how_gx_makes_one(made: Path) -> None:
    with pytest.raises(ConfigError, match=r"gx_context.path: no great_expectations.yml in .*get_context\(mode='file'"):
        load_gx_checks(made, "gx/expectations", checkpoint="nightly", suite=None)


def test_a_context_reached_through_a_link_out_of_the_project_is_refused(made: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "gx").symlink_to(made / "gx")  # the context itself is sound; it is outside the project

    with pytest.raises(ConfigError, match=r"gx_context.path: 'gx' resolves to .*, outside the project folder"):
        load_gx_checks(project, "gx", checkpoint="nightly", suite=None)


def test_a_store_that_names_python_is_refused_and_never_imported(project: Path) -> None:
    marker = project / "imported"
    plugins = project / "gx" / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "evil_store.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n", encoding="utf-8"
    )
    config = project / "gx" / "great_expectations.yml"
    text = config.read_text(encoding="utf-8").replace(
        "      class_name: TupleFilesystemStoreBackend\n      base_directory: expectations/",
        "      class_name: EvilBackend\n      module_name: evil_store\n      base_directory: expectations/",
    )
    assert "module_name: evil_store" in text
    config.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_gx_checks(project, "gx", checkpoint=None, suite="trips")

    assert "stores.expectations_store: keeps its data in 'EvilBackend' (module_name 'evil_store')" in str(info.value)
    assert "never loads a store's class" in str(info.value)
    assert not marker.exists()


def test_a_store_folder_outside_the_context_is_refused(project: Path) -> None:
    config = project / "gx" / "great_expectations.yml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("base_directory: checkpoints/", "base_directory: ../../elsewhere/")
    config.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=r"stores.checkpoint_store: base_directory '../../elsewhere/' must be"):
        load_gx_checks(project, "gx", checkpoint="nightly", suite=None)


def test_a_custom_expectation_from_plugins_is_refused_before_any_data_is_judged(project: Path) -> None:
    from airflow_ml.validation.suite_check import check_suite

    suite_file = project / "gx" / "expectations" / "trips.json"
    data = json.loads(suite_file.read_text(encoding="utf-8"))
    custom = {"type": "expect_trip_to_look_plausible_to_our_model", "kwargs": {"column": "x"}, "meta": {}}
    data["expectations"].append(custom)
    suite_file.write_text(json.dumps(data), encoding="utf-8")

    problems = check_suite(load_gx_checks(project, "gx", checkpoint=None, suite="trips").suite)

    assert len(problems) == 1
    assert str(suite_file) in problems[0]
    assert "GX has no expectation type 'expect_trip_to_look_plausible_to_our_model'" in problems[0]
    assert "custom expectations (Python in a GX context's plugins/) are never loaded" in problems[0]


def test_a_checkpoint_over_two_data_assets_is_refused_the_snapshot_is_one_table(project: Path) -> None:
    definitions = project / "gx" / "validation_definitions"
    other = json.loads((definitions / "trips_vd.json").read_text(encoding="utf-8"))
    other.update(id="other-id", name="zones_vd")
    other["data"]["asset"] = {"id": "zones-id", "name": "zones"}
    (definitions / "zones_vd.json").write_text(json.dumps(other), encoding="utf-8")
    checkpoint_file = project / "gx" / "checkpoints" / "nightly.json"
    checkpoint = json.loads(checkpoint_file.read_text(encoding="utf-8"))
    checkpoint["validation_definitions"].append({"id": "other-id", "name": "zones_vd"})
    checkpoint_file.write_text(json.dumps(checkpoint), encoding="utf-8")

    with pytest.raises(ConfigError, match=r"validates 2 data assets \(warehouse/trips, warehouse/zones\)"):
        load_gx_checks(project, "gx", checkpoint="nightly", suite=None)


def test_a_critical_expectation_of_the_context_blocks_the_run_and_a_warning_one_does_not(made: Path) -> None:
    import pandas as pd

    from airflow_ml.validation.runner import run_suite

    suite = load_gx_checks(made, "gx", checkpoint="nightly", suite=None).suite

    nulls, _ = run_suite(pd.DataFrame({"duration_min": [3.0, None]}), suite, suite_file="gx")
    too_long, _ = run_suite(pd.DataFrame({"duration_min": [3.0, 900.0]}), suite, suite_file="gx")

    assert (nulls.status, nulls.ok, nulls.failed_errors) == ("failed", False, 1)
    assert (too_long.status, too_long.ok, too_long.failed_warnings) == ("warned", True, 1)


@pytest.fixture(scope="module")
def dotted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A context made by GX with suite ``taxi.trips`` (GX stores it as ``expectations/taxi/trips.json``)."""
    project = tmp_path_factory.mktemp("dotted")
    make_gx_context(project, webhook="http://127.0.0.1:9/never", suite_name="taxi.trips")
    return project


def test_a_dotted_suite_name_is_found_in_the_subfolder_gx_writes_by_name_and_through_a_checkpoint(
    dotted: Path,
) -> None:
    assert (dotted / "gx" / "expectations" / "taxi" / "trips.json").is_file()

    by_name = load_gx_checks(dotted, "gx", checkpoint=None, suite="taxi.trips")
    by_checkpoint = load_gx_checks(dotted, "gx", checkpoint="nightly", suite=None)

    assert by_name.suite["name"] == by_checkpoint.suite["name"] == "taxi.trips"
    assert len(by_name.suite["expectations"]) == 2
    with pytest.raises(ConfigError, match=r"no expectation suite 'taxi' in .* \(known: \['taxi.trips'\]\)"):
        load_gx_checks(dotted, "gx", checkpoint=None, suite="taxi")


def test_an_unrelated_broken_file_in_a_store_does_not_block_the_named_suite_or_checkpoint(project: Path) -> None:
    expectations = project / "gx" / "expectations"
    (expectations / "other.json").write_text('{"name": "other", "notes": "{{ x }}", "name": "again"}', "utf-8")
    (project / "gx" / "checkpoints" / "stale.json").write_text("{not json", encoding="utf-8")
    (project / "gx" / "validation_definitions" / "stale.json").write_text('{"id": 1, "id": 2}', encoding="utf-8")

    assert load_gx_checks(project, "gx", checkpoint=None, suite="trips").suite["name"] == "trips"
    assert load_gx_checks(project, "gx", checkpoint="nightly", suite=None).suite["name"] == "trips"


def test_a_named_file_that_is_no_regular_utf8_json_gives_a_config_error_never_a_hang(project: Path) -> None:
    import os

    expectations = project / "gx" / "expectations"
    (expectations / "trips.json").unlink()
    os.mkfifo(expectations / "trips.json")  # read_text would block forever
    with pytest.raises(ConfigError, match=r"(?s)trips.json.*is not a regular file \(a pipe"):
        load_gx_checks(project, "gx", checkpoint=None, suite="trips")

    (expectations / "trips.json").unlink()
    (expectations / "trips.json").mkdir()
    with pytest.raises(ConfigError, match=r"(?s)trips.json.*is a folder; a GX store record is a JSON file"):
        load_gx_checks(project, "gx", checkpoint=None, suite="trips")

    (expectations / "trips.json").rmdir()
    (expectations / "trips.json").write_bytes(b'{"name": "trips\xff"}')
    with pytest.raises(ConfigError, match=r"(?s)trips.json.*byte 15 is not UTF-8; save the file as UTF-8 text"):
        load_gx_checks(project, "gx", checkpoint=None, suite="trips")


def test_a_context_file_or_gx_folder_linked_out_of_the_project_is_refused(made: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(made, project)
    config = project / "gx" / "great_expectations.yml"
    config.unlink()
    config.symlink_to(made / "gx" / "great_expectations.yml")

    with pytest.raises(ConfigError, match=r"great_expectations.yml resolves to .*, outside the project folder"):
        load_gx_checks(project, ".", checkpoint=None, suite="trips")

    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "gx").symlink_to(made / "gx")
    with pytest.raises(ConfigError, match=r"outside the project folder .*; keep the GX context's files inside"):
        load_gx_checks(linked, ".", checkpoint=None, suite="trips")


def test_a_store_file_linked_out_of_the_project_is_refused(project: Path, made: Path) -> None:
    suite_file = project / "gx" / "expectations" / "trips.json"
    suite_file.unlink()
    suite_file.symlink_to(made / "gx" / "expectations" / "trips.json")

    with pytest.raises(ConfigError, match=r"trips.json resolves to .*, outside the project folder"):
        load_gx_checks(project, "gx", checkpoint=None, suite="trips")


def test_a_gx_0_context_is_named_as_such_with_the_fix(project: Path) -> None:
    config = project / "gx" / "great_expectations.yml"
    text = config.read_text(encoding="utf-8")
    assert "config_version: 4" in text
    config.write_text(text.replace("config_version: 4", "config_version: 3"), encoding="utf-8")

    with pytest.raises(ConfigError, match=r"config_version 3.0: a GX 0.x context.*migrate it with GX 1.x"):
        load_gx_checks(project, "gx", checkpoint=None, suite="trips")


def test_a_custom_expectations_store_folder_is_read(project: Path) -> None:
    config = project / "gx" / "great_expectations.yml"
    text = config.read_text(encoding="utf-8").replace("base_directory: expectations/", "base_directory: suites/")
    config.write_text(text, encoding="utf-8")
    (project / "gx" / "expectations").rename(project / "gx" / "suites")

    assert load_gx_checks(project, "gx", checkpoint=None, suite="trips").suite["name"] == "trips"


def test_a_teams_own_meta_severity_and_gx_expectation_context_do_not_refuse_the_suite(project: Path) -> None:
    suite_file = project / "gx" / "expectations" / "trips.json"
    data = json.loads(suite_file.read_text(encoding="utf-8"))
    first, second = data["expectations"]
    first["meta"] = {"severity": "high", "owner": "ops"}  # the team's own label, GX severity critical
    second["expectation_context"] = {"description": "trips are under 10 hours"}
    suite_file.write_text(json.dumps(data), encoding="utf-8")

    expectations = load_gx_checks(project, "gx", checkpoint=None, suite="trips").suite["expectations"]

    assert [e["meta"]["severity"] for e in expectations] == ["error", "warn"]  # GX's critical and warning
    assert expectations[0]["meta"]["owner"] == "ops"
    assert "expectation_context" not in expectations[1]


def test_a_project_folder_that_is_the_filesystems_root_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"is /, the filesystem's root; keep the expectations folder in a project"):
        load_gx_checks("/", "gx", checkpoint=None, suite="trips")
