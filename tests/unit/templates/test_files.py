"""A city's ``template:`` and ``group:`` are names of files in their folders, never paths (review of issue 11, H2).

Before, ``template: /abs/path/creds`` read any ``.yaml`` on the disk and printed its values in lint's output and
in the Airflow UI's import errors; ``template: ../cities/berlin`` reported against berlin.yaml. And one rule
for file names (airflow_ml.templates.files): a file spelled otherwise is reported, never silently skipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_ml.exceptions import BrokenCityFiles, ConfigError
from airflow_ml.templates import load_city_configs, load_parent_configs
from airflow_ml.templates.suite_files import load_suite
from tests.support import REPO
from tests.support.city_files import write_city

SECRET = "s3cr3t-value"
CITY = "city: {city}\ntemplate: ride_duration\n"


@pytest.fixture
def secrets_beside(tmp_path: Path) -> Path:
    """A templates folder (the repository's template and cities), and beside it a folder with secrets."""
    root = tmp_path / "dag_templates"
    shutil.copytree(REPO / "dag_templates", root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "creds.yaml").write_text(f"task: {SECRET}\ndb_password: {SECRET}\n", encoding="utf-8")
    (outside / "secrets.yaml").write_text(f"api_token: {SECRET}\n", encoding="utf-8")
    return root


def _evil(secrets_beside: Path, text: str) -> Path:
    path = secrets_beside / "cities" / "evil.yaml"
    path.write_text("city: evil\n" + text, encoding="utf-8")
    return path


def _lint(secrets_beside: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from airflow_ml.cli import main

    code = main(["lint", str(secrets_beside), "--expectations", str(REPO / "expectations")])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "key", "shown"),
    [
        ("template: {outside}/creds\n", "template", "'{outside}/creds'"),
        ("template: ../cities/berlin\n", "template", "'../cities/berlin'"),
        ("template: ride_duration\ngroup: ../../outside/secrets\n", "group", "'../../outside/secrets'"),
    ],
    ids=["absolute", "another-city", "group-up-and-out"],
)
def test_a_path_for_a_name_is_refused_naming_the_city_file_and_line(
    secrets_beside: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, shown: str
) -> None:
    outside = secrets_beside.parent / "outside"
    path = _evil(secrets_beside, text.format(outside=outside))
    line = 1 + text.splitlines().index(next(row for row in text.splitlines() if row.startswith(f"{key}:"))) + 1

    configs, errors = load_city_configs(secrets_beside)

    assert [c.city for c in configs] == ["berlin", "lisbon", "sao_paulo"]
    [error] = errors
    assert error.file == str(path)
    [problem] = error.located
    assert problem.line == line
    assert problem.message.startswith(f"{key}: {shown.format(outside=outside)} is not a {key} name")
    assert "never a path" in problem.message
    code, out = _lint(secrets_beside, capsys)
    assert code == 1
    assert f"{path}:{line}:1: {key}: " in out
    assert SECRET not in out
    assert "berlin.yaml" not in out
    assert str(outside) not in out.replace(shown.format(outside=outside), "")  # only the value the city wrote


def test_the_broken_files_report_shows_no_outside_value(secrets_beside: Path) -> None:
    from airflow_ml.factory import report_broken_cities

    path = _evil(secrets_beside, f"template: {secrets_beside.parent / 'outside' / 'creds'}\n")

    with pytest.raises(BrokenCityFiles) as info:  # dags/retrain_errors.py, the UI's import errors
        report_broken_cities(templates_root=secrets_beside)

    assert f"{path}: 1 problem(s)" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_template_linked_from_outside_its_folder_is_not_read(
    secrets_beside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = secrets_beside / "templates" / "creds.yaml"
    link.symlink_to(secrets_beside.parent / "outside" / "creds.yaml")
    path = _evil(secrets_beside, "template: creds\n")

    configs, errors = load_city_configs(secrets_beside)

    assert len(configs) == 3
    [error] = errors
    assert error.file == str(path)
    [problem] = error.located
    assert problem.line == 2
    assert "creds.yaml in " in problem.message
    assert "is a link to a file outside that folder, which is never read" in problem.message
    code, out = _lint(secrets_beside, capsys)
    assert code == 1
    assert SECRET not in out
    assert f"{link}:1:1: creds.yaml is a link to a file outside" in out  # lint reads every template file too


def test_a_folder_that_is_itself_a_link_still_loads(tmp_path: Path) -> None:
    """Deployments mount or link the templates folder (git-sync): the files still lie inside it."""
    real = tmp_path / "real"
    shutil.copytree(REPO / "dag_templates", real)
    linked = tmp_path / "linked"
    linked.symlink_to(real)

    configs, errors = load_city_configs(linked)

    assert errors == []
    assert [c.city for c in configs] == ["berlin", "lisbon", "sao_paulo"]


def test_a_path_never_makes_a_fallback_parent(secrets_beside: Path) -> None:
    """The parents' scan reads template and group names too: a path there is skipped (the city reports it)."""
    template = secrets_beside / "templates" / "ride_duration.yaml"
    template.write_text(template.read_text(encoding="utf-8") + "fallback:\n  parent: global\n", encoding="utf-8")
    elsewhere = secrets_beside.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(template, elsewhere / "ride_duration.yaml")
    _evil(secrets_beside, f"template: {elsewhere / 'ride_duration'}\n")

    parents, errors = load_parent_configs(secrets_beside)

    assert errors == []
    assert [(p.dag_id, p.members) for p in parents] == [("ride_duration.global", ["berlin", "lisbon", "sao_paulo"])]


# --- One rule for file names: a file spelled otherwise is reported, never silently skipped ---------------


@pytest.mark.parametrize("name", ["porto.yml", "porto.YAML", "porto.Yaml", "porto.YML"])
def test_a_city_file_spelled_otherwise_is_reported_not_ignored(root: Path, name: str) -> None:
    from airflow_ml.factory import city_problems

    write_city(root, "oslo", CITY.format(city="oslo"))
    (root / "cities" / "spain").mkdir()
    path = root / "cities" / "spain" / name
    path.write_text(CITY.format(city="porto"), encoding="utf-8")
    (root / "cities" / "notes.txt").write_text("not a city file", encoding="utf-8")

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["oslo"]
    [error] = errors
    assert error.file == str(path)
    assert "rename it to porto.yaml" in str(error)
    assert [e.file for e in city_problems(root)] == [str(path)]


def test_the_shard_filter_applies_to_misnamed_files_too(root: Path) -> None:
    (root / "cities" / "porto.yml").write_text(CITY.format(city="porto"), encoding="utf-8")

    assert load_city_configs(root, include=lambda city: city != "porto") == ([], [])
    assert len(load_city_configs(root, include=lambda city: city == "porto")[1]) == 1


def test_a_template_spelled_otherwise_is_reported_and_named_by_its_cities(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    template.rename(root / "templates" / "ride_duration.yml")
    city = write_city(root, "porto", CITY.format(city="porto"))

    configs, errors = load_city_configs(root)

    assert configs == []
    by_file = {e.file: str(e) for e in errors}
    assert "rename it to ride_duration.yaml" in by_file[str(root / "templates" / "ride_duration.yml")]
    assert "ride_duration.yml is not read: rename it to ride_duration.yaml" in by_file[str(city)]


@pytest.mark.parametrize("name", ["defaults.yml", "groups/norway.YAML"])
def test_defaults_and_groups_spelled_otherwise_are_reported(root: Path, name: str) -> None:
    (root / "groups").mkdir()
    (root / name).write_text("dag: {retries: 3}\n", encoding="utf-8")
    write_city(root, "oslo", CITY.format(city="oslo"))

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["oslo"]
    assert [e.file for e in errors] == [str(root / name)]
    assert f"rename it to {Path(name).stem}.yaml" in str(errors[0])


@pytest.mark.parametrize("name", ["trips.yml", "trips.JSON", "trips.porto.yml"])
def test_a_suite_spelled_otherwise_is_reported(tmp_path: Path, name: str) -> None:
    if name.startswith("trips.porto"):
        (tmp_path / "trips.yaml").write_text("expectations:\n  - expect_column_to_exist: {column: a}\n")
    (tmp_path / name).write_text("expectations:\n  - expect_column_to_exist: {column: b}\n")

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips", city="porto")

    assert info.value.file == str(tmp_path / name)
    stem = Path(name).stem
    assert f"rename it to {stem}.{'json' if name.endswith('JSON') else 'yaml'}" in str(info.value)
