"""Lint reads every file, used by a city or not, and its null-target warning never crashes (review of issue 11).

M4: a template, group, defaults or suite file that no city uses was never read, so a key set twice, Jinja or an
anchor in it passed with exit code 0. M6: ``mostly: "0.9"`` crashed lint with a TypeError. L4: the null-target
warning stood at line 1 of the suite, not at the check that lets nulls through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.cli import main
from tests.support.worlds import copy_repository_config


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A copy of the repository's templates (berlin, lisbon, sao_paulo) and suites."""
    return copy_repository_config(tmp_path)


def _lint(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["lint", str(world["templates"]), "--expectations", str(world["expectations"])])
    return code, capsys.readouterr().out.splitlines()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_templates_and_groups_no_city_uses_are_linted(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    template = (world["templates"] / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    orphan = _write(
        world["templates"] / "templates" / "orphan.yaml",
        template.replace("suite: ride_trips ", "suite: other\nsuite: ride_trips ")
        + 'notes: "{{ var.value.secret }}"\n',
    )
    suite_line = 1 + next(i for i, row in enumerate(template.splitlines()) if row.startswith("suite:")) + 1
    typo = _write(
        world["templates"] / "templates" / "typo.yaml", template.replace("min_improvement:", "min_improvment:")
    )
    group = _write(world["templates"] / "groups" / "pt.yaml", "dag: &d {retries: 1}\ntraining: *d\n")

    code, out = _lint(world, capsys)

    assert code == 1
    assert f"{orphan}:{suite_line}:1: suite: set twice, on lines {suite_line - 1} and {suite_line}" in "\n".join(out)
    assert any(line.startswith(f"{orphan}:") and "holds Jinja" in line for line in out), out
    assert any(line.startswith(f"{typo}:") and "did you mean 'min_improvement'?" in line for line in out), out
    assert any(line.startswith(f"{group}:1:6: dag: anchor '&d'") for line in out), out
    assert any(line.startswith(f"{group}:2:11: training: alias '*d'") for line in out), out
    assert out[-1] == "3 city config(s) valid, 3 file(s) with errors"


def test_the_defaults_are_linted_with_no_city_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    templates = tmp_path / "dag_templates"
    (templates / "cities").mkdir(parents=True)
    defaults = _write(templates / "defaults.yaml", "dag:\n  owner: a\n  owner: b\n")

    code = main(["lint", str(templates), "--expectations", str(tmp_path / "none")])

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith(f"{defaults}:3:3: dag.owner: set twice, on lines 2 and 3")
    assert out[-1] == "0 city config(s) valid, 1 file(s) with errors"


def test_suites_no_city_uses_are_linted(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    folder = world["expectations"]
    unused = _write(folder / "unused.yaml", "expectations:\n  - expect_column_to_exsit: {column: a}\n")
    twice = _write(folder / "orphan.json", '{"expectations": [],\n "expectations": [{"type": "x"}]}\n')
    misnamed = _write(folder / "spare.yml", "expectations:\n  - expect_column_to_exist: {column: a}\n")
    nobody = _write(folder / "ride_trips.nowhere.yaml", "expectations: []\n")

    code, out = _lint(world, capsys)

    assert code == 1
    text = "\n".join(out)
    assert f"{unused}:2:1: expect_column_to_exsit: GX has no expectation type 'expect_column_to_exsit'" in text
    assert "did you mean 'expect_column_to_exist'?" in text
    assert f"{twice}:2:2: expectations: set twice, on lines 1 and 2" in text
    assert f"{misnamed}:1:1: the file is not read: its name ends in '.yml'" in text
    assert f"{nobody}:1:1: expectations: the list is empty" in text
    assert out[-1] == "3 city config(s) valid, 4 file(s) with errors"


def test_a_suite_problem_found_through_a_city_is_printed_once(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sibling = _write(
        world["expectations"] / "ride_trips.lisbon.yaml",
        "expectations:\n  - expect_column_to_exsit: {column: pickup_hour}\n",
    )

    code, out = _lint(world, capsys)

    assert code == 1
    mine = [line for line in out if line.startswith(f"{sibling}:")]
    assert mine == [
        f"{sibling}:2:1: expect_column_to_exsit: GX has no expectation type 'expect_column_to_exsit'; "
        "did you mean 'expect_column_to_exist'? (cities: lisbon)"
    ]


def test_a_quoted_mostly_is_warned_about_at_its_line_without_a_traceback(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sibling = _write(
        world["expectations"] / "ride_trips.lisbon.yaml",
        "expectations:\n  - expect_column_values_to_not_be_null: {column: duration_min, mostly: '0.9'}\n",
    )

    code, out = _lint(world, capsys)

    assert code == 0  # GX reads '0.9' as 0.9: a weak check, not a broken one
    [warning] = [line for line in out if ": warning: " in line]
    assert warning.startswith(f"{sibling}:2:1: warning: suite 'ride_trips' lets the target 'duration_min' be null")
    assert "(its not-null check has severity error, mostly '0.9')" in warning
    assert warning.endswith("(cities: lisbon)")


def test_a_mostly_gx_refuses_is_gxs_problem_not_a_crash(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sibling = _write(
        world["expectations"] / "ride_trips.lisbon.yaml",
        "expectations:\n  - expect_column_values_to_not_be_null: {column: duration_min, mostly: high}\n",
    )

    code, out = _lint(world, capsys)

    assert code == 1
    assert f"{sibling}:2:1: expect_column_values_to_not_be_null: bad arguments: mostly: value is not a valid float" in (
        "\n".join(out)
    )
    assert out[-1] == "3 city config(s) valid, 1 file(s) with errors, 1 warning(s)"


def test_the_warning_stands_at_the_weak_check_in_a_city_file(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    city = world["templates"] / "cities" / "berlin.yaml"
    text = city.read_text(encoding="utf-8")
    city.write_text(
        text + "expectations:\n  - expect_column_values_to_not_be_null: {column: duration_min}\n    severity: warn\n",
        encoding="utf-8",
    )
    line = len(text.splitlines()) + 2

    code, out = _lint(world, capsys)

    assert code == 0
    [warning] = [line for line in out if ": warning: " in line]
    assert warning.startswith(f"{city}:{line}:1: warning: suite 'ride_trips' lets the target 'duration_min' be null")
    assert "(its not-null check has severity warn)" in warning


def test_a_bad_scoring_key_is_linted_at_its_line(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    scoring = "scoring:\n  source: '{data_root}/incoming/{city}'\n"
    typo = _write(
        world["templates"] / "cities" / "lisbon.yaml",
        f"city: lisbon\ntemplate: ride_duration\n{scoring}  shadw: false\n",
    )
    column = _write(
        world["templates"] / "cities" / "berlin.yaml",
        f"city: berlin\ntemplate: ride_duration\n{scoring}  key_columns: [ride_id]\n",
    )

    code, out = _lint(world, capsys)

    assert code == 1
    assert any(line.startswith(f"{typo}:5:") and "did you mean 'shadow'?" in line for line in out), out
    assert any(line.startswith(f"{column}:") and "scoring.key_columns ['ride_id']" in line for line in out), out


def test_lint_reads_a_citys_gx_context_as_the_validate_task_will(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.gx_contexts import make_gx_context

    make_gx_context(world["expectations"].parent, webhook="http://127.0.0.1:9/never")  # <project>/gx
    city = world["templates"] / "cities" / "lisbon.yaml"
    text = city.read_text(encoding="utf-8")
    city.write_text(text + "gx_context: {path: gx, checkpoint: nightly}\n", encoding="utf-8")
    assert _lint(world, capsys)[0] == 0

    city.write_text(text + "gx_context: {path: gx, checkpoint: weekly}\n", encoding="utf-8")
    code, out = _lint(world, capsys)

    assert code == 1
    assert any("gx_context.checkpoint: no checkpoint 'weekly'" in line and "known: ['nightly']" in line for line in out)


def test_a_schema_declaration_without_its_change_is_warned_about_at_its_line(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    city = world["templates"] / "cities" / "lisbon.yaml"
    declaration = "gate:\n  accept_schema_change:\n    reason: zone renamed\n"
    city.write_text(city.read_text(encoding="utf-8").replace("gate:\n", declaration, 1), encoding="utf-8")
    line = city.read_text(encoding="utf-8").splitlines().index("  accept_schema_change:") + 1

    code, out = _lint(world, capsys)

    assert code == 0  # it loads: the gate refuses the change and shows the fingerprint to add
    [warning] = [w for w in out if "accept_schema_change" in w]
    assert warning.startswith(f"{city}:{line}:")
    assert "warning: gate.accept_schema_change ('zone renamed') names no change, so it accepts none" in warning
    assert warning.endswith("(cities: lisbon)")


def test_a_city_checked_by_a_gx_context_alone_gets_the_null_target_warning_when_its_check_only_warns(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import re

    from tests.support.gx_contexts import make_gx_context

    make_gx_context(world["expectations"].parent, webhook="http://127.0.0.1:9/never")
    template = world["templates"] / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    gx_only = re.sub(r"^suite: ride_trips.*$", "gx_context: {path: gx, suite: trips}", text, count=1, flags=re.M)
    assert gx_only != text
    template.write_text(gx_only, encoding="utf-8")
    for sibling in world["expectations"].glob("ride_trips.*.yaml"):
        sibling.unlink()  # the cities' own sibling files belong to the suite no longer named
    assert not any("null" in line for line in _lint(world, capsys)[1])  # its not-null check is critical

    suite_file = world["expectations"].parent / "gx" / "expectations" / "trips.json"
    data = json.loads(suite_file.read_text(encoding="utf-8"))
    data["expectations"][0]["severity"] = "warning"
    suite_file.write_text(json.dumps(data), encoding="utf-8")
    out = _lint(world, capsys)[1]

    warned = [line for line in out if "warning: suite 'trips' lets the target 'duration_min' be null" in line]
    assert warned, out
    assert all(line.startswith(f"{suite_file}:1:") for line in warned), warned  # placed at the GX file


def test_a_check_dask_cannot_merge_is_refused_for_a_dask_city_at_its_line(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    unique = "expectations:\n  - expect_column_values_to_be_unique: {column: pickup_zone}\n"
    lisbon, berlin = (world["templates"] / "cities" / f"{city}.yaml" for city in ("lisbon", "berlin"))
    lisbon.write_text(lisbon.read_text(encoding="utf-8") + unique, encoding="utf-8")
    assert _lint(world, capsys)[0] == 0, "a local city validates the whole frame: uniqueness is judged"

    text = berlin.read_text(encoding="utf-8") + "training: {engine: dask}\n"
    berlin.write_text(text + unique, encoding="utf-8")
    code, out = _lint(world, capsys)

    assert code == 1
    [problem] = [line for line in out if "partition by partition" in line]
    assert problem.startswith(f"{berlin}:{len(text.splitlines()) + 2}:1: expect_column_values_to_be_unique: ")
    assert "uniqueness is not judged per partition" in problem
    assert "training.engine: local" in problem
    assert problem.endswith("(cities: berlin)")
