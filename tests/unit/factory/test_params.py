"""The trigger form (airflow_ml.factory.params): the promotion mode's default comes from the template."""

from __future__ import annotations

from pathlib import Path

from airflow_ml.ml.gate.modes import MODES
from airflow_ml.operators.overrides import RunOverrides
from tests.support.worlds import build_dag, copy_template


def _dags(root: Path) -> dict[str, object]:
    copy_template(root, "ride_duration")
    city = "city: {city}\ntemplate: ride_duration\ndag:\n  schedule: null\n"
    (root / "cities" / "lisbon.yaml").write_text(city.format(city="lisbon"), encoding="utf-8")
    shadow = city.format(city="porto") + "gate:\n  promotion_mode: shadow\n"
    (root / "cities" / "porto.yaml").write_text(shadow, encoding="utf-8")
    return {name: build_dag(root, f"ride_duration.{name}") for name in ("lisbon", "porto")}


def test_the_form_defaults_to_the_templates_promotion_mode_so_scheduled_runs_follow_it(tmp_path: Path) -> None:
    dags = _dags(tmp_path)

    for city, mode in (("lisbon", "auto"), ("porto", "shadow")):
        param = dags[city].params.get_param("promotion_mode")  # type: ignore[attr-defined]
        assert param.value == mode
        assert param.schema["enum"] == list(MODES)
        assert param.description.startswith(f"{mode} unless changed (gate.promotion_mode)")
        # A run without conf (a scheduled run) parses the form's defaults into its overrides.
        defaults = {name: dags[city].params.get_param(name).value for name in dags[city].params}  # type: ignore[attr-defined]
        assert RunOverrides.from_params(defaults).promotion_mode == mode


def test_the_form_is_in_three_sections_with_every_mode_labelled_and_every_bound_stated(tmp_path: Path) -> None:
    from airflow_ml.factory.params import PROMOTION_SECTION, TRAINING_SECTION, WINDOW_SECTION

    params = _dags(tmp_path)["lisbon"].params  # type: ignore[attr-defined]
    sections = [params.get_param(name).schema.get("section", TRAINING_SECTION) for name in params]

    assert list(dict.fromkeys(sections)) == [TRAINING_SECTION, WINDOW_SECTION, PROMOTION_SECTION]
    labels = params.get_param("promotion_mode").schema["values_display"]
    assert set(labels) == set(MODES)
    assert all(label.startswith(f"{mode}: ") for mode, label in labels.items())
    assert "1 to 100,000" in params.get_param("num_boost_round").description
    assert "Above 0, at most 1." in params.get_param("learning_rate").description
    assert "At most 500 characters" in params.get_param("reason").description
