"""A city's ``template:`` and ``group:`` are names of files in their folders, never paths (review of issue 11, H2).

Before, ``template: /abs/path/creds`` read any ``.yaml`` on the disk and printed its values in lint's output and
in the Airflow UI's import errors; ``template: ../cities/berlin`` reported against berlin.yaml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_ml.exceptions import BrokenCityFiles
from airflow_ml.templates import load_city_configs, load_parent_configs

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A templates folder (the repository's template and cities), and beside it a folder with secrets."""
    root = tmp_path / "dag_templates"
    shutil.copytree(REPO / "dag_templates", root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "creds.yaml").write_text(f"task: {SECRET}\ndb_password: {SECRET}\n", encoding="utf-8")
    (outside / "secrets.yaml").write_text(f"api_token: {SECRET}\n", encoding="utf-8")
    return root


def _evil(root: Path, text: str) -> Path:
    path = root / "cities" / "evil.yaml"
    path.write_text("city: evil\n" + text, encoding="utf-8")
    return path


def _lint(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from airflow_ml.cli import main

    code = main(["lint", str(root), "--expectations", str(REPO / "expectations")])
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
    root: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, shown: str
) -> None:
    outside = root.parent / "outside"
    path = _evil(root, text.format(outside=outside))
    line = 1 + text.splitlines().index(next(row for row in text.splitlines() if row.startswith(f"{key}:"))) + 1

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["berlin", "lisbon", "sao_paulo"]
    [error] = errors
    assert error.file == str(path)
    [problem] = error.located
    assert problem.line == line
    assert problem.message.startswith(f"{key}: {shown.format(outside=outside)} is not a {key} name")
    assert "never a path" in problem.message
    code, out = _lint(root, capsys)
    assert code == 1
    assert f"{path}:{line}:1: {key}: " in out
    assert SECRET not in out
    assert "berlin.yaml" not in out
    assert str(outside) not in out.replace(shown.format(outside=outside), "")  # only the value the city wrote


def test_the_broken_files_report_shows_no_outside_value(root: Path) -> None:
    from airflow_ml.factory import report_broken_cities

    path = _evil(root, f"template: {root.parent / 'outside' / 'creds'}\n")

    with pytest.raises(BrokenCityFiles) as info:  # dags/retrain_errors.py, the UI's import errors
        report_broken_cities(templates_root=root)

    assert f"{path}: 1 problem(s)" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_template_linked_from_outside_its_folder_is_not_read(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = root / "templates" / "creds.yaml"
    link.symlink_to(root.parent / "outside" / "creds.yaml")
    path = _evil(root, "template: creds\n")

    configs, errors = load_city_configs(root)

    assert len(configs) == 3
    [error] = errors
    assert error.file == str(path)
    [problem] = error.located
    assert problem.line == 2
    assert "creds.yaml in " in problem.message
    assert "is a link to a file outside that folder, which is never read" in problem.message
    code, out = _lint(root, capsys)
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


def test_a_path_never_makes_a_fallback_parent(root: Path) -> None:
    """The parents' scan reads template and group names too: a path there is skipped (the city reports it)."""
    template = root / "templates" / "ride_duration.yaml"
    template.write_text(template.read_text(encoding="utf-8") + "fallback:\n  parent: global\n", encoding="utf-8")
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(template, elsewhere / "ride_duration.yaml")
    _evil(root, f"template: {elsewhere / 'ride_duration'}\n")

    parents, errors = load_parent_configs(root)

    assert errors == []
    assert [(p.dag_id, p.members) for p in parents] == [("ride_duration.global", ["berlin", "lisbon", "sao_paulo"])]
