"""The retention settings of a template: bounded and strict."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.templates import load_city_file
from airflow_ml.templates.retention_spec import RetentionSpec
from tests.support.worlds import copy_template


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("retention:\n  keep_last: 0\n", ("retention.keep_last", "greater than or equal to 1")),
        ("retention:\n  keep_last: 100000\n", ("retention.keep_last", "less than or equal to 10000")),
        ("retention:\n  keep_last: '10'\n", ("retention.keep_last", "valid integer")),
        ("retention:\n  enabled: 'no'\n", ("retention.enabled", "valid boolean")),
        ("retention:\n  keep_lats: 3\n", ("'keep_lats'", "did you mean 'keep_last'?")),
    ],
)
def test_retention_settings_are_bounded_and_strict(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    from airflow_ml.exceptions import ConfigError

    copy_template(tmp_path, "ride_duration")
    path = tmp_path / "cities" / "oslo.yaml"
    path.write_text("city: oslo\ntemplate: ride_duration\n" + text, encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_city_file(path, tmp_path / "templates")

    message = str(info.value)
    assert "oslo.yaml line " in message
    for fragment in fragments:
        assert fragment in message, message
    assert RetentionSpec().keep_last == 10
