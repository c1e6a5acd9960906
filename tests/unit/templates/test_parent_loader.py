"""The fallback parents' load: which parents are built, through the loader's guards (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_ml.templates import load_city_configs, load_parent_configs
from airflow_ml.templates.loader import Layers
from airflow_ml.templates.parent_names import ParentNames
from tests.support.city_files import line_of
from tests.support.claim_fleets import UNITY, city_of, declares, group_file, recorded_reads, template_on


@pytest.mark.timeout(20, method="signal")  # no Airflow task runs here to clear the alarm
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
@pytest.mark.parametrize("layer", ["groups", "templates"])
def test_a_group_or_template_that_is_no_regular_file_is_never_read_and_hangs_no_parents_load(
    root: Path, monkeypatch: pytest.MonkeyPatch, kind: str, layer: str
) -> None:
    declares(template_on(root, "ride_duration", UNITY), "{parent: global}")
    group_file(root, "iberia", "fallback: {parent: group}\n")
    city_of(root, "oslo")  # a member of ride_duration.global: the parents' load runs
    path = root / layer / "norway.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # an open for reading would wait for a writer forever
    else:
        path.symlink_to("/dev/zero")  # a read would never end
    if layer == "groups":
        city = city_of(root, "bergen", extra="group: norway\n")
    else:
        city = city_of(root, "bergen", template="norway")
    reads = recorded_reads(monkeypatch)

    parents, errors = load_parent_configs(root)
    cities = load_city_configs(root)

    assert path not in reads
    assert [(p.dag_id, p.members) for p in parents] == [("ride_duration.global", ["oslo"])]
    assert errors == []
    assert [e.file for e in cities[1]] == [str(city)], "the city's own load names the file it refuses"


def test_of_two_declared_parents_giving_one_name_the_first_by_dag_id_keeps_it_and_a_new_city_moves_nothing(
    root: Path,
) -> None:
    ride = declares(template_on(root, "ride", UNITY), "{parent: group}")
    ride_group = declares(template_on(root, "ride_group", UNITY), "{parent: global}")
    group_file(root, "global")  # ride.group.global and ride_group.global: both main.ml.ride_group_global
    city_of(root, "lisbon", template="ride_group")

    before = load_parent_configs(root)  # ride.group.global has no member yet, and still keeps the name
    city_of(root, "oslo", extra="group: global\n", template="ride")
    after = load_parent_configs(root)

    assert [p.dag_id for p in before[0]] == []
    assert [p.dag_id for p in after[0]] == ["ride.group.global"]
    assert [str(e) for e in before[1]] == [str(e) for e in after[1]], "the same error, whatever the cities"
    [error] = after[1]
    assert (error.file, error.located[0].line) == (str(ride_group), line_of(ride_group, "name_pattern"))
    text = str(error)
    declared = f"(declared at {ride_group}, line {line_of(ride_group, 'fallback')})"
    assert f"parent 'ride_group.global' {declared} the registered model 'main.ml.ride_group_global'" in text
    assert f"the fallback parent 'ride.group.global' that {ride}, line {line_of(ride, 'fallback')} declares" in text
    assert "'ride_group.global' is not built and its cities are refused" in text
    assert "rename group 'global' (groups/global.yaml and its cities' 'group:')" in text
    assert "or set 'fallback: {parent: none}' where either parent is declared" in text


def test_a_defaults_file_linked_from_outside_the_root_declares_its_parent_as_every_load_reads_it(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shared = tmp_path_factory.mktemp("shared") / "defaults.yaml"  # one defaults file for several roots
    shared.write_text("fallback: {parent: global}\n", encoding="utf-8")
    defaults = root / "defaults.yaml"
    defaults.symlink_to(shared)
    city_of(root, "oslo")

    cities, errors = load_city_configs(root)
    parents, parent_errors = load_parent_configs(root)

    assert errors == []
    assert [(c.city, c.fallback.parent) for c in cities] == [("oslo", "global")], "the city load reads the link"
    assert [(p.dag_id, p.members) for p in parents] == [("ride_duration.global", ["oslo"])], "so its parent is built"
    assert parent_errors == []
    declared = ParentNames(root, Layers().located).declaration("ride_duration", None)
    assert declared is not None
    assert (declared.dag_id, declared.declared_in) == ("ride_duration.global", defaults), "and its name reserved"
