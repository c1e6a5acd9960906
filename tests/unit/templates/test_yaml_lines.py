"""YAML that cannot attack (airflow_ml.templates.yaml_lines): no Jinja, no anchors or aliases, no key twice.

The checks sit in the one reading path of every YAML file (and of JSON suites), so lint, the DAG files
(``load_city_configs``, the fallback parents, the broken-files report) and the validate task all apply them.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates import load_city_configs, load_parent_configs
from airflow_ml.templates.bounded_read import MAX_YAML_BYTES
from airflow_ml.templates.suite_files import load_suite
from airflow_ml.templates.yaml_lines import YamlFileError, load_yaml_with_lines
from tests.support import REPO
from tests.support.city_files import line_of, write_city

CITY = "city: {city}\ntemplate: ride_duration\n"
JINJA_SOURCE = 'dataset: {source: "{data_root}/raw/{{ conn.mlflow_default.password }}/{city}"}\n'


def _only_error(root: Path) -> ConfigError:
    _, errors = load_city_configs(root)
    assert len(errors) == 1, errors
    return errors[0]


def _bomb(levels: int = 8, width: int = 10) -> str:
    """About 400 bytes that expand to ``width ** levels`` items through nested aliases."""
    names = "abcdefghijklmnop"[:levels]
    lines = [f"a: &a [{', '.join(['x'] * width)}]"]
    lines += [f"{name}: &{name} [{', '.join(['*' + prev] * width)}]" for prev, name in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


# --- 1a. No Jinja -------------------------------------------------------------------------------------------


def test_jinja_in_a_city_source_is_refused_naming_file_line_and_field(root: Path) -> None:
    path = write_city(root, "porto", CITY.format(city="porto") + JINJA_SOURCE)

    configs, errors = load_city_configs(root)

    assert configs == []
    [error] = errors
    assert error.file == str(path)
    [problem] = error.located
    assert (problem.line, problem.col) == (3, 19)
    assert problem.message.startswith("dataset.source: '{data_root}/raw/{{ conn.mlflow_default.password }}/{city}'")
    assert "never rendered" in problem.message
    assert "remove it" in problem.message
    assert f"{path}: 1 problem(s)\n  - line 3: dataset.source:" in str(error)


def _write_layer(root: Path, layer: str, text: str) -> tuple[Path, int]:
    """Put ``text`` into a city, template, group or defaults file of a city porto; return it and its first line."""
    city = CITY.format(city="porto")
    if layer == "city":
        return write_city(root, "porto", city + text), 3
    if layer == "template":
        path = root / "templates" / "ride_duration.yaml"
        base = path.read_text(encoding="utf-8")
        base = base[: base.index("\ndag:\n") + 1]  # the template's own dag: block is the last one
        path.write_text(base + text, encoding="utf-8")
        write_city(root, "porto", city)
        return path, len(base.splitlines()) + 1
    if layer == "group":
        (root / "groups").mkdir()
        path = root / "groups" / "norway.yaml"
        write_city(root, "porto", city + "group: norway\n")
    else:
        path = root / "defaults.yaml"
        write_city(root, "porto", city)
    path.write_text(text, encoding="utf-8")
    return path, 1


@pytest.mark.parametrize(
    ("layer", "text", "field", "line"),
    [
        ("city", 'description: "runs on {% if true %}weekdays{% endif %}"\n', "description", 0),
        ("city", 'display_name: "Porto {# comment #}"\n', "display_name", 0),
        ("city", '"{{ var.value.x }}": 1\n', "(top level): the key", 0),
        ("city", "expectations:\n  - expect_column_to_exist: {column: '{{ ti }}'}\n", "exist.column", 1),
        ("template", 'dag: {tags: ["{{ macros.ds_add(ds, 1) }}"]}\n', "dag.tags[0]", 0),
        ("group", "dag:\n  owner: '{{ conn.x.password }}'\n", "dag.owner", 1),
        ("defaults", "dag: {owner: '{{ conn.x.password }}'}\n", "dag.owner", 0),
    ],
)
def test_jinja_is_refused_in_every_layer_key_and_value(
    root: Path, layer: str, text: str, field: str, line: int
) -> None:
    path, first = _write_layer(root, layer, text)

    error = _only_error(root)

    assert error.file == str(path)
    [problem] = error.located
    assert problem.line == first + line
    assert field in problem.message.split("holds Jinja")[0]
    assert "holds Jinja" in problem.message


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("trips.yaml", "expectations:\n  - expect_column_to_exist: {column: '{{ ds }}'}\n", 2),
        (
            "trips.yaml",
            "description: '{% include \"x\" %}'\nexpectations:\n  - expect_column_to_exist: {column: a}\n",
            1,
        ),
        (
            "trips.json",
            '{\n  "expectations": [\n    {"type": "expect_column_to_exist", "kwargs": {"column": "{{ ds }}"}}\n'
            "  ]\n}\n",
            3,
        ),
    ],
)
def test_jinja_in_a_suite_is_refused_naming_the_line(tmp_path: Path, name: str, text: str, line: int) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert info.value.file == str(tmp_path / name)
    [problem] = info.value.located
    assert problem.line == line
    assert "holds Jinja" in problem.message


# --- 2. No anchors or aliases ---------------------------------------------------------------------------------


def test_the_alias_bomb_is_a_small_file() -> None:
    assert len(_bomb().encode()) < 400


def test_an_alias_bomb_city_is_refused_before_any_expansion(root: Path) -> None:
    path = write_city(root, "porto", CITY.format(city="porto") + _bomb())
    write_city(root, "oslo", CITY.format(city="oslo"))

    start = time.perf_counter()
    configs, errors = load_city_configs(root)
    elapsed = time.perf_counter() - start

    assert [c.city for c in configs] == ["oslo"]  # the bomb hides nobody
    [error] = errors
    assert error.file == str(path)
    assert [p.line for p in error.located] == list(range(3, 11))  # one problem per line that anchors or aliases
    assert error.located[0].message.startswith("a: anchor '&a': anchors and aliases are not allowed")
    assert "b: anchor '&b'" in error.located[1].message
    assert elapsed < 2, elapsed  # today: past 30 s and gigabytes


def test_the_dag_files_stay_fast_and_name_the_bomb(root: Path) -> None:
    from airflow_ml.exceptions import BrokenCityFiles
    from airflow_ml.factory import Shard, register_dags, report_broken_cities

    write_city(root, "oslo", CITY.format(city="oslo"))
    path = write_city(root, "porto", CITY.format(city="porto") + _bomb())

    start = time.perf_counter()
    built = {}
    for index in range(2):  # the two retrain_shard_*.py files
        built |= register_dags({}, templates_root=root, expectations_dir=REPO / "expectations", shard=Shard(index, 2))
    with pytest.raises(BrokenCityFiles) as info:  # dags/retrain_errors.py
        report_broken_cities(templates_root=root)

    assert time.perf_counter() - start < 10  # two DAG files and the report; today: past 30 s and gigabytes
    assert list(built) == ["ride_duration.oslo"]
    assert f"{path}: 8 problem(s)\n  - line 3: a: anchor '&a'" in str(info.value)


def test_an_alias_alone_is_refused_with_its_field(root: Path) -> None:
    path = write_city(root, "porto", CITY.format(city="porto") + "display_name: &name Porto\ndescription: *name\n")

    error = _only_error(root)

    assert [(p.line, p.message.split(":")[0]) for p in error.located] == [(3, "display_name"), (4, "description")]
    assert "alias '*name'" in error.located[1].message
    assert error.file == str(path)


def test_a_merge_key_is_refused(root: Path) -> None:
    write_city(root, "porto", CITY.format(city="porto") + "training:\n  <<: {seed: 3}\n")

    [problem] = _only_error(root).located

    assert problem.line == 4
    assert "merge keys ('<<') are not allowed" in problem.message


@pytest.mark.parametrize("layer", ["template", "group"])
def test_an_alias_bomb_in_a_layer_costs_milliseconds_for_cities_and_parents(root: Path, layer: str) -> None:
    from airflow_ml.factory import city_problems

    template = root / "templates" / "ride_duration.yaml"
    template.write_text(template.read_text(encoding="utf-8") + "fallback: {parent: global}\n", encoding="utf-8")
    (root / "groups").mkdir()
    (root / "groups" / "norway.yaml").write_text("dag: {retries: 2}\n", encoding="utf-8")
    bombed = template if layer == "template" else root / "groups" / "norway.yaml"
    bombed.write_text(bombed.read_text(encoding="utf-8") + _bomb(), encoding="utf-8")
    for city in ("oslo", "bergen"):
        write_city(root, city, CITY.format(city=city) + "group: norway\n")

    start = time.perf_counter()
    configs, errors = load_city_configs(root)
    parents, parent_errors = load_parent_configs(root)
    problems = city_problems(root)
    elapsed = time.perf_counter() - start

    assert configs == []
    assert parents == []
    assert parent_errors == []
    assert {e.file for e in errors} == {str(bombed)}
    assert len(errors) == 1  # the template's problem once, not once per city
    assert {e.file for e in problems} == {str(bombed)}
    assert "anchor '&a'" in str(errors[0])
    assert elapsed < 2, elapsed


def test_an_alias_bomb_city_never_reaches_the_parents_membership_scan(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    template.write_text(template.read_text(encoding="utf-8") + "fallback: {parent: global}\n", encoding="utf-8")
    write_city(root, "oslo", CITY.format(city="oslo"))
    write_city(root, "porto", CITY.format(city="porto") + _bomb())

    start = time.perf_counter()
    parents, errors = load_parent_configs(root)

    assert time.perf_counter() - start < 2
    assert errors == []
    assert [p.members for p in parents] == [["oslo"]]  # the broken file is left to the city load, which reports it


def test_an_alias_bomb_suite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trips.yaml").write_text(_bomb(5) + "expectations: [*e]\n", encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert [p.line for p in info.value.located] == [1, 2, 3, 4, 5, 6]
    assert "alias '*e'" in info.value.located[-1].message


def test_lint_names_the_alias_bomb_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_ml.cli import main

    templates = tmp_path / "dag_templates"
    (templates / "templates").mkdir(parents=True)
    (templates / "templates" / "ride_duration.yaml").write_text(
        (REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (templates / "cities").mkdir()
    path = write_city(templates, "porto", CITY.format(city="porto") + _bomb())

    start = time.perf_counter()
    code = main(["lint", str(templates), "--expectations", str(REPO / "expectations")])

    assert time.perf_counter() - start < 5
    assert code == 1
    out = capsys.readouterr().out
    assert f"{path}:3:4: a: anchor '&a': anchors and aliases are not allowed" in out
    assert f"{path}:10:4: h: anchor '&h'" in out


# --- 4. No key twice ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "text", "field", "lines"),
    [
        ("city", "gate:\n  min_improvement: 0.01\n  min_improvement: 0.5\n", "gate.min_improvement", (1, 2)),
        ("city", "expectations: []\nexpectations: []\n", "expectations", (0, 1)),
        (
            "city",
            "expectations:\n  - expect_column_to_exist: {column: a}\n    severity: error\n    severity: warn\n",
            "expectations[0].severity",
            (2, 3),
        ),
        ("city", "dag: {retries: 1, retries: 5}\n", "dag.retries", (0, 0)),
        ("template", "dag:\n  owner: a\n  owner: b\n", "dag.owner", (1, 2)),
        ("group", "training:\n  seed: 1\ntraining:\n  seed: 2\n", "training", (0, 2)),
        ("defaults", "dag:\n  owner: a\n  owner: b\n", "dag.owner", (1, 2)),
    ],
)
def test_a_key_set_twice_is_refused_naming_both_lines(
    root: Path, layer: str, text: str, field: str, lines: tuple[int, int]
) -> None:
    path, first = _write_layer(root, layer, text)

    error = _only_error(root)

    assert error.file == str(path)
    [problem] = error.located
    one, two = first + lines[0], first + lines[1]
    assert problem.line == two
    assert problem.message == (
        f"{field}: set twice, on lines {one} and {two}; the second would silently replace the first: keep one"
    )


def test_a_yaml_suite_with_a_severity_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trips.yaml"
    path.write_text(
        "expectations:\n"
        "  - expect_column_values_to_not_be_null: {column: a}\n"
        "    severity: error\n"
        "    severity: warn\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    assert info.value.problems == [
        "line 4: expectations[0].severity: set twice, on lines 3 and 4; the second would silently replace the first: "
        "keep one"
    ]


def test_a_json_suite_with_expectations_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    suite = {"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]}
    text = json.dumps(suite, indent=2)[:-2] + ',\n  "expectations": []\n}\n'
    path = tmp_path / "trips.json"
    path.write_text(text, encoding="utf-8")
    assert json.loads(text) == {"expectations": []}  # what the last-one-wins reading made of it

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    [problem] = info.value.located
    assert (problem.line, problem.col) == (line_of(path, '"expectations": []'), 3)
    assert problem.message.startswith(f"expectations: set twice, on lines 2 and {problem.line}")


def test_a_json_suite_with_a_nested_key_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trips.json"
    path.write_text(
        '{"expectations": [\n'
        '  {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"},\n'
        '   "meta": {"severity": "error", "severity": "warn"}}\n'
        "]}\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as info:
        load_suite(tmp_path, "trips")

    [problem] = info.value.located
    assert problem.line == 3
    assert problem.message.startswith("expectations[0].meta.severity: set twice, on lines 3 and 3")


def test_yaml_lines_map_key_paths_to_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n# comment\nb:\n  c:\n    d: 2\n  e: [1, 2]\n", encoding="utf-8")

    data, lines = load_yaml_with_lines(path)

    assert data == {"a": 1, "b": {"c": {"d": 2}, "e": [1, 2]}}
    assert lines[("a",)] == 1
    assert lines[("b",)] == 3
    assert lines[("b", "c", "d")] == 5
    assert lines[("b", "e")] == 6


def test_yaml_lines_uses_the_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n", encoding="utf-8")

    # the safe loader refuses to build Python objects: nothing runs, and the error names the tag and its line
    with pytest.raises(YamlFileError, match=r"line 1: .*python/object/apply:os\.system"):
        load_yaml_with_lines(path)


@pytest.mark.parametrize(("text", "fragment"), [("", "empty"), ("a: 1\nb: [1\n", "invalid YAML"), ("- a\n", "mapping")])
def test_yaml_lines_raises_yaml_file_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(YamlFileError, match=fragment):
        load_yaml_with_lines(path)


#: Texts the node walk builds itself or hands to PyYAML's constructor: every scalar form YAML 1.1 resolves,
#: keys that are not strings, a key given twice as two spellings of one number, explicit tags, dates.
BUILT_ALIKE = [
    "a: 1\nb: -0x1F\nc: 0o17\nd: 017\ne: 0b101\nf: 1_000\ng: 190:20:30\nh: +12\n",
    "a: 1.5\nb: -.inf\nc: .NaN\nd: 6.8523015e+5\ne: 1_000.5\nf: 190:20:30.15\ng: .5\n",
    "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: False\ng: ~\nh: null\ni:\nj: ''\n",
    "1: one\n2.5: two\nfalse: three\n~: four\n",
    "a: [1, [2, {b: c}], {}, []]\nb: {c: {d: [x, 'y', \"z\"]}}\nlist:\n  - - nested\n  - {k: v}\n",
    "a: !!str 12\nb: !!float 1\nc: !!int '7'\n",
    "day: 2026-01-31\nwhen: 2026-01-31 10:00:00\n",
    "bits: !!binary aGVsbG8=\nvalue: =\n",
    "a: 0b_\nb: ._\n",
]


def _alike(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float) and left != left:
        return right != right  # NaN equals nothing, itself included
    if type(left) is not type(right):
        return False
    if isinstance(left, dict) and isinstance(right, dict):
        return list(left) == list(right) and all(_alike(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_alike, left, right))
    return left == right


@pytest.mark.parametrize("text", BUILT_ALIKE)
def test_the_data_is_what_pyyamls_safe_loader_builds(tmp_path: Path, text: str) -> None:
    import yaml

    path = tmp_path / "file.yaml"
    path.write_text(text)
    try:
        expected: object = yaml.load(text, Loader=yaml.CSafeLoader)
    except (yaml.YAMLError, ValueError):  # a value that does not build: both refuse the file
        with pytest.raises(YamlFileError):
            load_yaml_with_lines(path)
        return
    assert _alike(load_yaml_with_lines(path)[0], expected)


@pytest.mark.parametrize(
    ("text", "line", "shown"),
    [("1: one\ntrue: two\n", 2, "True"), ("a: {~: x, null: y}\n", 1, "None"), ("0x1: a\n01: b\n", 2, "1")],
)
def test_one_key_spelled_two_ways_is_refused(tmp_path: Path, text: str, line: int, shown: str) -> None:
    # PyYAML builds both keys alike (True == 1) and keeps the second value: the first is lost without a word.
    path = tmp_path / "file.yaml"
    path.write_text(text)

    with pytest.raises(YamlFileError) as info:
        load_yaml_with_lines(path)

    [problem] = info.value.problems
    assert problem.line == line
    assert f"the same key as an earlier one written another way ({shown})" in problem.message


@pytest.mark.parametrize(("text", "fast"), [(BUILT_ALIKE[0], True), (BUILT_ALIKE[4], True), (BUILT_ALIKE[6], False)])
def test_plain_files_are_built_by_the_walk_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, fast: bool
) -> None:
    # The walk builds plain files itself (city files read ~30% faster); dates still go through PyYAML.
    from airflow_ml.templates import yaml_lines

    constructed: list[object] = []
    original = yaml_lines._Loader.construct_document

    def counted(loader: object, node: object) -> object:
        constructed.append(node)
        return original(loader, node)

    monkeypatch.setattr(yaml_lines._Loader, "construct_document", counted)
    path = tmp_path / "file.yaml"
    path.write_text(text)

    load_yaml_with_lines(path)

    assert (constructed == []) is fast


@pytest.mark.parametrize("path", sorted([*REPO.glob("dag_templates/**/*.yaml"), *REPO.glob("expectations/*.yaml")]))
def test_the_projects_files_read_as_pyyaml_reads_them(path: Path) -> None:
    import yaml

    assert _alike(load_yaml_with_lines(path)[0], yaml.load(path.read_text(), Loader=yaml.CSafeLoader))


# A FIFO's open waits for a writer forever: the signal method ends the test if the guard ever goes.
@pytest.mark.timeout(20, method="signal")
def test_a_city_file_that_is_a_fifo_is_reported_and_the_other_cities_load(root: Path) -> None:
    write_city(root, "lisbon", CITY.format(city="lisbon"))
    fifo = root / "cities" / "porto.yaml"
    os.mkfifo(fifo)

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["lisbon"]
    assert [e.file for e in errors] == [str(fifo)]
    assert "porto.yaml is a FIFO, not a regular file" in str(errors[0])
    assert "replace it with a regular file" in str(errors[0])


@pytest.mark.timeout(20, method="signal")
def test_a_city_file_linked_to_dev_zero_is_not_read(root: Path) -> None:
    # /dev/zero never ends: read whole, it would fill memory before any YAML check could run.
    write_city(root, "lisbon", CITY.format(city="lisbon"))
    (root / "cities" / "porto.yaml").symlink_to("/dev/zero")

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["lisbon"]
    assert "porto.yaml is a device or socket, not a regular file" in str(errors[0])


def test_a_yaml_file_over_the_size_bound_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * (MAX_YAML_BYTES // 10 + 1), encoding="utf-8")

    with pytest.raises(YamlFileError, match=r"holds more than 1,048,576 bytes"):
        load_yaml_with_lines(path)


def test_a_file_at_the_size_bound_and_crlf_line_ends_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    text = "city: lisbon\r\ntemplate: ride_duration\r\n"
    path.write_bytes((text + "#" * (MAX_YAML_BYTES - len(text) - 1) + "\n").encode())

    data, lines = load_yaml_with_lines(path)

    assert data == {"city": "lisbon", "template": "ride_duration"}
    assert lines[("template",)] == 2
