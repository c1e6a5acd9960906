"""Hierarchical fallback in templates and the factory: parents, their members and layers, and precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates import load_city_configs, load_city_file, load_parent_configs
from tests.support import REPO
from tests.support.city_files import config_error, write_city

CITY = "city: {city}\ntemplate: ride_duration\n"


def _template_falls_back(root: Path, fallback: str) -> None:
    with (root / "templates" / "ride_duration.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"\nfallback: {fallback}\n")


def _group(root: Path, name: str, text: str) -> None:
    (root / "groups").mkdir(exist_ok=True)
    (root / "groups" / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_without_fallback_a_city_has_no_parent(root: Path) -> None:
    config = load_city_file(write_city(root, "oslo", CITY.format(city="oslo")), root / "templates")

    assert config.fallback.parent == "none"
    assert config.parent_model_name is None
    assert load_parent_configs(root) == ([], [])


def test_a_global_parent_unites_every_city_of_the_template(root: Path) -> None:
    _template_falls_back(root, "{parent: global, min_rows: 2000}")
    write_city(root, "oslo", CITY.format(city="oslo"))
    write_city(root, "bergen", CITY.format(city="bergen") + "fallback: {min_rows: 50}\n")
    write_city(root, "tromso", CITY.format(city="tromso") + "fallback: {parent: none}\n")  # opts out
    cities, errors = load_city_configs(root)
    parents, parent_errors = load_parent_configs(root)

    assert errors == parent_errors == []
    by_city = {c.city: c for c in cities}
    assert (by_city["oslo"].parent_model_name, by_city["oslo"].fallback.min_rows) == ("ride_duration.global", 2000)
    assert by_city["bergen"].fallback.min_rows == 50
    assert by_city["tromso"].parent_model_name is None
    [parent] = parents
    assert (parent.dag_id, parent.model_name, parent.city) == ("ride_duration.global", "ride_duration.global", "global")
    assert parent.members == ["bergen", "oslo", "tromso"]  # the union of all siblings
    assert parent.fallback.parent == "none"
    assert parent.suite == by_city["oslo"].suite


def test_a_city_cannot_declare_a_parent_its_template_does_not_build(root: Path) -> None:
    path = write_city(root, "oslo", CITY.format(city="oslo") + "fallback:\n  min_rows: 10\n  parent: global\n")

    text = str(config_error(path, root))

    assert f"{path}" in text
    assert "line 5: fallback.parent: 'global' is not what the template or group declares ('none')" in text
    assert "set 'fallback: {parent: global}' in the template or group file" in text


def test_a_group_parent_unites_the_group_and_takes_its_layer(root: Path) -> None:
    _group(root, "norway", "training:\n  num_boost_round: 77\nfallback: {parent: group}\n")
    _group(root, "sweden", "fallback: {parent: group}\n")
    write_city(root, "oslo", CITY.format(city="oslo") + "group: norway\n")
    write_city(root, "bergen", CITY.format(city="bergen") + "group: norway\n")
    write_city(root, "malmo", CITY.format(city="malmo") + "group: sweden\n")
    write_city(root, "paris", CITY.format(city="paris"))
    cities, _ = load_city_configs(root)
    parents, errors = load_parent_configs(root)

    assert errors == []
    by_id = {p.dag_id: p for p in parents}
    assert set(by_id) == {"ride_duration.group.norway", "ride_duration.group.sweden"}
    norway = by_id["ride_duration.group.norway"]
    assert (norway.members, norway.group, norway.scope) == (["bergen", "oslo"], "norway", "group")
    assert norway.training.num_boost_round == 77  # the group's layer over the template
    assert by_id["ride_duration.group.sweden"].members == ["malmo"]
    assert next(c for c in cities if c.city == "oslo").parent_model_name == "ride_duration.group.norway"


def test_a_group_parent_needs_a_group(root: Path) -> None:
    _template_falls_back(root, "{parent: group}")
    path = write_city(root, "oslo", CITY.format(city="oslo"))

    text = str(config_error(path, root))

    assert str(path) in text
    assert "fallback.parent 'group' needs the city to belong to a group" in text
    assert "add 'group: <country or client>'" in text
    assert load_parent_configs(root) == ([], [])  # no group, no group parent


def test_global_is_not_a_city_id(root: Path) -> None:
    path = write_city(root, "global", CITY.format(city="global"))

    text = str(config_error(path, root))

    assert "city id 'global' is reserved" in text
    assert "'ride_duration.global'" in text


@pytest.mark.parametrize(
    ("fallback", "fragment"),
    [
        ("{parent: country}", "fallback.parent"),
        ("[global]", "fallback"),
        ("{min_rows: 0}", "fallback.min_rows"),
        ("{min_row: 10}", "did you mean 'min_rows'"),
    ],
)
def test_bad_fallback_settings_name_the_field(root: Path, fallback: str, fragment: str) -> None:
    path = write_city(root, "oslo", CITY.format(city="oslo") + f"fallback: {fallback}\n")

    assert fragment in str(config_error(path, root))


def test_the_factory_builds_one_dag_per_parent_with_its_members(root: Path) -> None:
    from airflow_ml.factory import register_dags, register_parent_dags

    _template_falls_back(root, "{parent: global}")
    for city in ("oslo", "bergen"):
        write_city(root, city, CITY.format(city=city))
    namespace: dict = {}
    dags = register_parent_dags(namespace, templates_root=root, expectations_dir=REPO / "expectations")

    assert list(dags) == ["ride_duration.global"]
    dag = dags["ride_duration.global"]
    assert dag.task_dict["snapshot"].settings["members"] == ["bergen", "oslo"]
    assert dag.task_dict["train"].settings["fallback_min_rows"] is None  # a parent always trains
    assert "bergen, oslo" in (dag.doc_md or "")
    city = register_dags({}, templates_root=root, expectations_dir=REPO / "expectations")["ride_duration.oslo"]
    assert city.task_dict["train"].settings["fallback_min_rows"] == 1000
    assert city.task_dict["train"].settings["parent_model"] == "ride_duration.global"
    assert city.task_dict["gate"].settings["parent_model"] == "ride_duration.global"
    assert city.task_dict["snapshot"].settings["members"] is None


def test_lint_reports_a_parent_whose_group_layer_is_broken(root: Path) -> None:
    from airflow_ml.factory import city_problems

    _group(root, "norway", "fallback: {parent: group}\n")
    write_city(root, "oslo", CITY.format(city="oslo") + "group: norway\n")
    (root / "groups" / "norway.yaml").write_text("fallback: {parent: group}\ntraining: {num_boost_round: -1}\n")

    _, errors = load_parent_configs(root)

    assert len(errors) == 1
    assert isinstance(errors[0], ConfigError)
    assert "norway.yaml" in str(errors[0])
    assert "num_boost_round" in str(errors[0])
    assert any("num_boost_round" in str(e) for e in city_problems(root))


def test_lint_counts_the_parents_and_reports_their_errors(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_ml.cli import main

    _group(root, "norway", "fallback: {parent: group}\n")
    write_city(root, "oslo", CITY.format(city="oslo") + "group: norway\n")
    expectations = str(REPO / "expectations")
    assert main(["lint", str(root), "--expectations", expectations]) == 0
    assert "1 city config(s) and 1 fallback parent(s) valid" in capsys.readouterr().out

    (root / "groups" / "norway.yaml").write_text("fallback: {parent: group}\ntraining: {num_boost_round: -1}\n")
    assert main(["lint", str(root), "--expectations", expectations]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'groups' / 'norway.yaml'}:2:12: training.num_boost_round: Input should be greater" in out
    assert out.count("num_boost_round") == 1  # the group's problem once: for its city and for its parent
