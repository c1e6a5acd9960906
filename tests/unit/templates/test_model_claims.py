"""Which city file keeps a registered model name several files claim: one rule for every load (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.templates import load_city_configs
from airflow_ml.templates.loader import Layers
from airflow_ml.templates.model_claims import clash_possible, name_patterns, outside_claims
from airflow_ml.templates.registry_spec import DEFAULT_NAME_PATTERN
from tests.support.claim_fleets import JOINED, UNITY, city_of, recorded_reads, template_on


@pytest.mark.parametrize(
    "patterns",
    [
        {"ride": DEFAULT_NAME_PATTERN, "ride_x": DEFAULT_NAME_PATTERN},  # one dot splits a name back into its pair
        {"ride": DEFAULT_NAME_PATTERN, "ride_x": UNITY},  # a custom pattern never gives '<a>.<b>' names
        {"ride": UNITY, "food": UNITY},  # 'main.ml.ride_' and 'main.ml.food_': neither starts the other
        {"ride": "{template}.{city}.m", "ride_x": "{template}-{city}"},  # 'ride.' vs 'ride_x-'
        {"ride": JOINED},  # one template: one name per city id
    ],
)
def test_templates_whose_names_cannot_meet_make_no_clash_possible(patterns: dict[str, str]) -> None:
    assert clash_possible(patterns) is False


@pytest.mark.parametrize(
    "patterns",
    [
        {"a_b": JOINED, "a": JOINED},  # a_b + c and a + b_c
        {"ride": UNITY, "ride_x": UNITY},  # ride + x_oslo and ride_x + oslo
        {"ride": "{city}_{template}", "x_ride": "{city}_{template}"},  # oslo_x + ride and oslo + x_ride
    ],
)
def test_custom_patterns_whose_ends_overlap_make_a_clash_possible(patterns: dict[str, str]) -> None:
    assert clash_possible(patterns) is True


def test_the_patterns_are_the_templates_over_the_defaults_and_a_refused_one_claims_nothing(root: Path) -> None:
    (root / "defaults.yaml").write_text(f"registry:\n  name_pattern: '{JOINED}'\n", encoding="utf-8")
    template_on(root, "unity", UNITY)
    (root / "templates" / "broken.yaml").write_text("registry: [1]\n", encoding="utf-8")
    (root / "templates" / "refused.yaml").write_text("registry: {name_pattern: '{city}'}\n", encoding="utf-8")

    assert name_patterns(root, Layers().data) == {"ride_duration": JOINED, "unity": UNITY}


def test_no_city_file_is_read_when_no_clash_is_possible(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template_on(root, "ride", UNITY)  # ride_duration keeps the default pattern: no name of one meets the other's
    oslo = city_of(root, "oslo")
    city_of(root, "duration_oslo", template="ride")
    reads = recorded_reads(monkeypatch)

    def validate(path: Path) -> None:
        raise AssertionError(f"{path} validated")

    found = outside_claims(root, [oslo], lambda city: city == "oslo", Layers().data, validate)  # type: ignore[arg-type]

    assert found == {}
    assert sorted(p.name for p in reads) == ["ride.yaml", "ride_duration.yaml"], "the templates only"


def test_a_partial_load_where_a_clash_is_possible_reads_its_files_and_the_few_that_could_claim_their_names(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template_on(root, "ride", JOINED)  # a copy of ride_duration before its pattern is added
    template_on(root, "ride_duration", JOINED)
    template_on(root, "food", JOINED)  # 'food_' starts no name of ride_duration's: no candidate
    keeper = city_of(root, "duration_oslo", template="ride")  # ride_duration_oslo, first in path order
    oslo = city_of(root, "oslo")
    for index in range(10):
        city_of(root, f"city_{index}")
        city_of(root, f"duration_city_{index}", template="food")
    whole = load_city_configs(root)
    reads = recorded_reads(monkeypatch)

    configs, errors = load_city_configs(root, include=lambda city: city == "oslo")

    assert configs == []
    assert [str(e) for e in errors] == [str(e) for e in whole[1] if str(oslo) in str(e)]
    assert sorted(p for p in reads if "cities" in p.parts) == [keeper, oslo]


@pytest.mark.timeout(20, method="signal")  # no Airflow task runs here to clear the alarm
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_defaults_that_are_no_regular_file_are_never_read_and_hang_no_load(
    root: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    template_on(root, "ride", JOINED)  # a clash is possible: the pass reads the layer files
    template_on(root, "ride_duration", JOINED)
    city_of(root, "duration_oslo", template="ride")
    oslo = city_of(root, "oslo")
    defaults = root / "defaults.yaml"
    if kind == "fifo":
        os.mkfifo(defaults)  # an open for reading would wait for a writer forever
    else:
        defaults.symlink_to("/dev/zero")  # a read would never end
    whole = load_city_configs(root)
    reads = recorded_reads(monkeypatch)

    configs, errors = load_city_configs(root, include=lambda city: city == "oslo")

    assert defaults not in reads
    assert configs == []
    assert [str(e) for e in errors] == [str(e) for e in whole[1] if str(oslo) in str(e)]


@pytest.mark.timeout(20, method="signal")  # no Airflow task runs here to clear the alarm
def test_a_template_linking_out_of_templates_is_never_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template_on(root, "ride_duration", JOINED)
    outside = root / "outside.yaml"  # would make 'ride' and 'ride_duration' clash, if it were read
    outside.write_text((root / "templates" / "ride_duration.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    link = root / "templates" / "ride.yaml"
    link.symlink_to(outside)
    city_of(root, "duration_oslo", template="ride")  # refused by the loader: its template links out
    city_of(root, "oslo")
    whole = load_city_configs(root)
    reads = recorded_reads(monkeypatch)

    patterns = name_patterns(root, Layers().data)
    alone = load_city_configs(root, include=lambda city: city == "oslo")

    assert patterns == {"ride_duration": JOINED}
    assert link not in reads
    assert outside not in reads
    assert [c.city for c in alone[0]] == ["oslo"]
    assert alone[0] == [c for c in whole[0] if c.city == "oslo"]


def test_a_city_whose_name_a_file_left_out_keeps_earlier_is_refused_naming_both_files(root: Path) -> None:
    template_on(root, "ride", JOINED)  # a copy of ride_duration before its pattern is added
    template_on(root, "ride_duration", JOINED)
    keeper = city_of(root, "duration_oslo", template="ride")  # ride_duration_oslo, first in path order
    loser = city_of(root, "oslo")  # ride_duration_oslo too

    configs, errors = load_city_configs(root, include=lambda city: city == "oslo")

    assert configs == []
    [error] = errors
    text = str(error)
    assert f"({loser}) the registered model 'ride_duration_oslo'" in text
    assert f"already the model of city 'duration_oslo' of template 'ride' ({keeper})" in text
    assert "put a '.' between {template} and {city}" in text
    assert load_city_configs(root, include=lambda city: city == "duration_oslo") == (
        load_city_configs(root)[0],
        [],
    ), "the keeper loads alone as in the whole fleet"


def test_the_first_valid_file_in_path_order_keeps_the_name_a_broken_one_claims_nothing(root: Path) -> None:
    template_on(root, "ride", JOINED)  # a copy of ride_duration before its pattern is added
    template_on(root, "ride_duration", JOINED)
    broken = city_of(root, "duration_oslo", template="ride", folder="a/", extra="not_a_field: 1\n")
    later = city_of(root, "duration_oslo", template="ride", folder="b/")  # the first valid claimant
    city_of(root, "oslo")

    whole = load_city_configs(root)
    alone = load_city_configs(root, include=lambda city: city == "oslo")

    assert [c.city for c in whole[0]] == ["duration_oslo"]
    assert whole[1][0].file == str(broken)
    assert [str(e) for e in alone[1]] == [str(e) for e in whole[1][1:]], "oslo's error, as the whole fleet says it"
    assert str(later) in str(alone[1][0])


def test_a_partial_load_takes_the_templates_patterns_once_for_both_checks(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ml.templates import model_claims, parent_names

    calls: list[Path] = []

    def counted(folder: Path, read: Any) -> dict[str, str]:
        calls.append(folder)
        return name_patterns(folder, read)

    monkeypatch.setattr(model_claims, "name_patterns", counted)
    monkeypatch.setattr(parent_names, "name_patterns", counted)
    template_on(root, "ride", JOINED)
    template_on(root, "ride_duration", JOINED)  # a clash is possible: the claims pass and the parents' check run
    city_of(root, "duration_oslo", template="ride")
    city_of(root, "oslo")
    city_of(root, "lisbon")

    configs, errors = load_city_configs(root, include=lambda city: city in ("oslo", "lisbon"))

    assert [c.city for c in configs] == ["lisbon"]
    assert len(errors) == 1
    assert calls == [root], "one load, one reading of the patterns"
