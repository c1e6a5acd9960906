"""``registry.name_pattern``: registered model names of a three-part (Unity Catalog) shape, checked at lint."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.cli import main
from airflow_ml.templates import load_city_configs, load_city_file, load_parent_configs
from airflow_ml.templates.registry_spec import DEFAULT_NAME_PATTERN, name_pattern_problems
from tests.support.city_files import config_error, line_of, write_city

UNITY = "main.ml.{template}_{city}"


def _pattern(root: Path, pattern: str, template: str = "ride_duration") -> Path:
    path = root / "templates" / f"{template}.yaml"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"\nregistry:\n  name_pattern: '{pattern}'\n")
    return path


def _city(root: Path, city: str, extra: str = "", template: str = "ride_duration") -> Path:
    return write_city(root, city, f"city: {city}\ntemplate: {template}\n{extra}")


def test_the_default_names_stay_template_dot_city(root: Path) -> None:
    config = load_city_file(_city(root, "oslo"), root / "templates")

    assert config.registry.name_pattern == DEFAULT_NAME_PATTERN
    assert config.model_name == "ride_duration.oslo" == config.dag_id


def test_a_template_pattern_names_its_cities_and_parents_in_three_parts(root: Path) -> None:
    template = _pattern(root, UNITY)
    with template.open("a", encoding="utf-8") as handle:
        handle.write("fallback: {parent: global}\n")
    (root / "groups").mkdir(exist_ok=True)
    (root / "groups" / "norway.yaml").write_text("fallback: {parent: group}\n", encoding="utf-8")
    _city(root, "oslo", "group: norway\n")
    _city(root, "lisbon")

    cities, errors = load_city_configs(root)
    parents, parent_errors = load_parent_configs(root)

    assert errors == parent_errors == []
    by_city = {c.city: c for c in cities}
    assert by_city["oslo"].model_name == "main.ml.ride_duration_oslo"
    assert by_city["oslo"].dag_id == "ride_duration.oslo"  # DAG ids do not change
    assert by_city["oslo"].parent_model_name == "main.ml.ride_duration_group_norway"  # three parts still
    assert by_city["lisbon"].parent_model_name == "main.ml.ride_duration_global"
    assert sorted(p.model_name for p in parents) == [
        "main.ml.ride_duration_global",
        "main.ml.ride_duration_group_norway",
    ]


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("main.ml.{city}", "must hold {template} exactly once (it has 0)"),
        ("{template}.{city}.{city}", "must hold {city} exactly once (it has 2)"),
        ("{template}.{town}.{city}", "unknown placeholder(s) ['town']"),
        ("main ml.{template}_{city}", "has character(s) [' ']"),
        ("main/ml/{template}_{city}", "has character(s) ['/']"),
        ("main..{template}_{city}", "has an empty part"),
        ("{template}_{city}.", "has an empty part"),
        ("{template}_{city!r}", "takes no format spec or conversion"),
        ("{template}_{city", "is not a pattern"),
        ("ml.{template}_{city}", "shaped like the default's '<template>.<city>'"),
        ("{city}.{template}", "shaped like the default's '<template>.<city>'"),
        ("main.group.{template}_{city}", "shaped like the default's '<template>.<city>'"),
        ("Main.ML.{template}_{city}", "has character(s) ['L', 'M']"),
        ("main.ml.{template}{city}", "with nothing between them"),
        ("main.ml.{city}{template}", "with nothing between them"),
    ],
)
def test_a_bad_pattern_is_refused_naming_the_problem_and_the_fix(pattern: str, says: str) -> None:
    problems = name_pattern_problems(pattern)

    assert any(says in p for p in problems), problems
    assert all(
        p.endswith(f"or remove registry.name_pattern for the default {DEFAULT_NAME_PATTERN!r}") for p in problems
    )


def test_a_bad_pattern_in_a_template_names_its_file_line_and_field(root: Path) -> None:
    template = _pattern(root, "main.ml/{template}_{city}")
    path = _city(root, "oslo")

    text = str(config_error(path, root))

    assert str(template) in text
    assert f"line {line_of(template, 'name_pattern')}" in text
    assert "registry.name_pattern" in text
    assert "has character(s) ['/']" in text


def test_a_city_file_may_not_set_the_pattern(root: Path) -> None:
    path = _city(root, "oslo", f"registry:\n  name_pattern: '{UNITY}'\n")

    text = str(config_error(path, root))

    assert f"line {line_of(path, 'name_pattern')}" in text
    assert "registry.name_pattern" in text
    assert "set 'registry: {name_pattern: ...}' in templates/ride_duration.yaml" in text


@pytest.mark.parametrize("fallback", ["group", "global"])
def test_a_group_file_that_sets_the_pattern_refuses_its_cities_and_makes_no_parent(root: Path, fallback: str) -> None:
    (root / "groups").mkdir()
    group = root / "groups" / "norway.yaml"
    group.write_text(f"fallback: {{parent: {fallback}}}\nregistry:\n  name_pattern: '{UNITY}'\n", encoding="utf-8")
    _city(root, "oslo", "group: norway\n")

    [error] = load_city_configs(root)[1]

    assert (error.file, error.located[0].line) == (str(group), line_of(group, "name_pattern"))
    assert load_parent_configs(root) == ([], []), "a parent named by a pattern only a template may set"


def test_under_a_custom_pattern_a_city_id_may_not_take_the_group_parents_names(root: Path) -> None:
    _pattern(root, UNITY)

    text = str(config_error(_city(root, "group_norway"), root))

    assert "city id 'group_norway' starts with 'group_'" in text
    assert "give the city another id" in text


@pytest.mark.parametrize(
    ("pattern", "city", "name"),
    [
        ("x.{city}.{template}", "group", "x.group.ride_duration"),  # template x's parent of group ride_duration
        ("a.gro{city}.{template}", "up", "a.group.ride_duration"),
    ],
)
def test_under_a_custom_pattern_a_city_whose_name_reads_as_a_default_group_parents_is_refused(
    root: Path, pattern: str, city: str, name: str
) -> None:
    template = _pattern(root, pattern)  # valid: its sample 'x.c.t' has no default shape
    _city(root, "oslo")
    path = _city(root, city)

    configs, errors = load_city_configs(root)

    assert [c.model_name for c in configs] == [pattern.format(city="oslo", template="ride_duration")]
    [error] = errors
    [problem] = error.located
    assert (error.file, problem.file, problem.line) == (str(path), str(template), line_of(template, "name_pattern"))
    assert f"gives city {city!r} of template 'ride_duration' the registered model {name!r}" in str(error)
    assert f"which reads as the default pattern's model of {name.split('.', 1)[1]!r} of template" in str(error)
    assert "give the city another id, or change the pattern so that no part of a name can be 'group'" in str(error)


def test_a_fallback_parent_whose_name_reads_as_a_default_group_parents_is_not_built(root: Path) -> None:
    source = (root / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    (root / "templates" / "group.yaml").write_text(source + "fallback: {parent: global}\n", encoding="utf-8")
    template = _pattern(root, "x.{template}.{city}", template="group")  # group.global: x.group.global
    _city(root, "oslo", template="group")  # x.group.oslo: refused too

    parents, errors = load_parent_configs(root)

    assert parents == []
    [error] = errors
    assert (error.located[0].file or error.file, error.located[0].line) == (
        str(template),
        line_of(template, "name_pattern"),
    )
    assert "gives the fallback parent 'group.global' the registered model 'x.group.global'" in str(error)
    assert "reads as the default pattern's model of 'group.global' of template 'x'" in str(error)
    assert [e.file for e in load_city_configs(root)[1]] == [str(root / "cities" / "oslo.yaml")]


@pytest.mark.parametrize("city", ["groups", "grouper", "group1", "my_group"])
def test_a_part_that_only_holds_group_keeps_the_city(root: Path, city: str) -> None:
    _pattern(root, "x.{city}.{template}")
    _city(root, city)

    configs, errors = load_city_configs(root)

    assert (errors, [c.city for c in configs]) == ([], [city])


def test_lint_reports_two_templates_whose_patterns_give_one_model_name(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (root / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    (root / "templates" / "ride.yaml").write_text(source, encoding="utf-8")
    first = _pattern(root, "{template}_{city}")
    _pattern(root, "{template}_{city}", template="ride")
    _city(root, "duration_oslo", template="ride")  # ride_duration_oslo
    _city(root, "oslo")  # ride_duration_oslo too

    cities, errors = load_city_configs(root)

    assert [c.city for c in cities] == ["duration_oslo"]
    [error] = errors
    text = str(error)
    assert "registered model 'ride_duration_oslo', already the model of city 'duration_oslo' of template 'ride'" in text
    assert "put a '.' between {template} and {city}" in text
    code = main(["lint", str(root), "--expectations", str(Path(__file__).parents[3] / "expectations")])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{first}:{line_of(first, 'name_pattern')}:" in out


def test_the_guides_example_names_lisbon_as_it_says(root: Path) -> None:
    from tests.support import REPO

    guide = (REPO / "docs" / "guides" / "cities-and-templates.md").read_text(encoding="utf-8")
    block = guide.split("```yaml\nregistry:\n", 1)[1].split("```", 1)[0]
    with (root / "templates" / "ride_duration.yaml").open("a", encoding="utf-8") as handle:
        handle.write("\nregistry:\n" + block)

    config = load_city_file(_city(root, "lisbon"), root / "templates")

    assert "ride_duration.lisbon -> main.ml.ride_duration_lisbon" in block
    assert config.model_name == "main.ml.ride_duration_lisbon"


def test_a_name_too_long_for_the_fleet_views_dag_tag_is_refused(root: Path) -> None:
    _pattern(root, "main." + "x" * 80 + ".{template}_{city}")

    text = str(config_error(_city(root, "oslo"), root))

    assert "at most 94 fit the DAG tag 'model:<name>'" in text
    assert "shorten the pattern's fixed parts" in text


def test_a_fallback_parents_name_too_long_for_the_dag_tag_is_refused_and_the_other_parents_still_load(
    root: Path,
) -> None:
    from airflow_ml.factory import register_parent_dags

    _pattern(root, "main.mlmodels2.{template}_{city}")
    (root / "groups").mkdir(exist_ok=True)
    long_group = "g" * 60  # the city's name has 33 characters, its parent's 95
    for group in (long_group, "norway"):
        (root / "groups" / f"{group}.yaml").write_text("fallback: {parent: group}\n", encoding="utf-8")
    path = _city(root, "oslo", f"group: {long_group}\n")
    _city(root, "bergen", "group: norway\n")

    (error,) = [e for e in load_city_configs(root)[1] if e.file == str(path)]
    text = str(error)

    assert f"gives its fallback parent the registered model 'main.mlmodels2.ride_duration_group_{long_group}'" in text
    assert "95 characters; at most 94 fit the DAG tag 'model:<name>'" in text
    assert "registry.name_pattern" in text
    dags = register_parent_dags({}, templates_root=root, expectations_dir=Path("expectations"))
    assert list(dags) == ["ride_duration.group.norway"]  # the long one is skipped, logged; no import error
