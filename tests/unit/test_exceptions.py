"""Error messages cut long values: a 5,000-character value never fills lint's output (review of issue 11, L5).

Every place that prints a value from a file shows at most 80 characters of it (``exceptions.show_value``), as
the Jinja message always did: pydantic's errors as ``describe`` words them, the specs' own checks, suites.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError, show_value
from airflow_ml.templates import load_city_configs
from airflow_ml.templates.suite_files import read_suite_file
from tests.support import REPO

LONG = "q" * 5000
#: YAML's implicit keys end at 1,024 characters.
LONG_KEY = "q" * 1000
#: Longer than any message needs for its own words, far shorter than the value.
MAX_MESSAGE = 700


def _short(message: str) -> None:
    assert len(message) < MAX_MESSAGE, message[:300]
    assert "q" * 100 not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"task: {LONG}\n", "task: Input should be 'regression' or 'binary' (got 'qqqq"),
        (f"gate:\n  {LONG_KEY}: 1\n", "unknown key 'qqqq"),
        (f"dataset:\n  source: '{{data_root}}/{LONG}'\n", "must contain '{city}'"),
        (f"dag:\n  schedule: '{LONG}'\n", "has 1 field(s)"),
        (f"dag:\n  schedule: '0 0 {LONG} * *'\n", "the day of month field 'qqqq"),
        (f"training:\n  search:\n    params:\n      {LONG_KEY}: [1, 2]\n", "is not a LightGBM parameter"),
        (f"drift:\n  features:\n    {LONG_KEY}: {{psi: {{warn: 0.1}}}}\n", "is neither a feature nor the target"),
        (f"expectations:\n  - {LONG}\n", "expectations.0: Input should be a valid dictionary (got 'qqqq"),
    ],
    ids=["literal", "unknown-key", "source", "schedule", "cron-field", "search", "drift", "item"],
)
def test_a_long_value_in_a_city_is_cut_in_its_message(root: Path, text: str, fragment: str) -> None:
    (root / "cities" / "porto.yaml").write_text(f"city: porto\ntemplate: ride_duration\n{text}", encoding="utf-8")

    configs, [error] = load_city_configs(root)

    assert configs == []
    assert any(fragment in p.message for p in error.located), str(error)[:2000]
    for problem in error.located:
        _short(problem.message)


def test_a_long_value_in_a_suite_is_cut_in_lint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_ml.cli import main

    expectations = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", expectations)
    (expectations / "ride_trips.lisbon.yaml").write_text(
        f"expectations:\n  - expect_column_to_exist: {{column: {LONG}}}\n"
        f"  - expect_{LONG_KEY}: {{column: pickup_hour}}\n",
        encoding="utf-8",
    )

    code = main(["lint", str(REPO / "dag_templates"), "--expectations", str(expectations)])

    out = capsys.readouterr().out
    assert code == 1
    lines = [line for line in out.splitlines() if "ride_trips.lisbon.yaml" in line]
    assert len(lines) == 2, out[:3000]
    assert "column 'qqqq" in lines[0]
    assert "is not a column the template knows" in lines[0]
    assert "GX has no expectation type 'expect_qqqq" in lines[1]
    for line in lines:
        _short(line)


def test_a_suite_item_that_is_no_mapping_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "trips.yaml"
    path.write_text(f"expectations:\n  - [{', '.join([LONG] * 3)}]\n", encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        read_suite_file(path)

    [problem] = info.value.located
    assert problem.message.startswith("an expectation is a mapping, got ['qqqq")
    _short(str(info.value))


def test_show_value_cuts_and_never_fails() -> None:
    assert show_value("abc") == "'abc'"
    assert show_value(LONG) == "'" + "q" * 76 + "..."
    assert len(show_value(LONG, quote=False)) == 80
    assert show_value(10**5000) == "a whole number of about 5001 digits"  # repr() itself refuses this one
    assert show_value([10**5000]) == "a list too large to show"
