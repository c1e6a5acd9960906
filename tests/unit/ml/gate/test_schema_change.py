"""The schema-change rule (airflow_ml.ml.gate.schema_change): the diff, the declaration, and the judge's refusal."""

from __future__ import annotations

from airflow_ml.ml.gate import schema_change
from airflow_ml.ml.gate.judge import decide
from airflow_ml.ml.gate.records import GateDecision
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.gate.schema_change import AcceptSchemaChange, diff, evaluate

OLD = {
    "columns": {"distance_km": "double", "pickup_zone": "string", "pickup_hour": "long"},
    "categories": {"pickup_zone": ["alfama", "baixa", "belem"]},
}
NEW = {
    "columns": {"distance_km": "double", "pickup_zone": "string", "pickup_hour": "string", "temperature_c": "double"},
    "categories": {"pickup_zone": ["alfama", "baixa", "parque"]},
}


def test_the_diff_names_added_columns_type_changes_and_levels() -> None:
    assert diff(OLD, NEW) == {
        "added": ["temperature_c"],
        "type_changed": {"pickup_hour": ["long", "string"]},
        "levels_added": {"pickup_zone": ["parque"]},
        "levels_removed": {"pickup_zone": ["belem"]},
    }
    assert diff(NEW, OLD)["removed"] == ["temperature_c"]
    assert diff(OLD, OLD) == {}
    became = {"columns": OLD["columns"], "categories": {}}
    assert diff(OLD, became) == {"categorical": {"pickup_zone": [True, False]}}


def test_an_integer_column_inferred_as_double_is_no_change() -> None:
    widened = {"columns": {**OLD["columns"], "pickup_hour": "double"}, "categories": OLD["categories"]}

    assert diff(OLD, widened) == {}


def test_a_change_without_a_declaration_refuses_with_the_diff_in_the_reason() -> None:
    check = evaluate(OLD, NEW, None, compared_with="champion v3", source="its airflow_ml.schema tag")

    assert check.refuses
    assert not check.accepted
    assert check.not_declared == ("temperature_c", "pickup_hour", "pickup_zone")
    reason = schema_change.refusal(check)
    assert "differs from the champion v3's: column(s) added ['temperature_c']" in reason
    assert "pickup_zone levels added ['parque']" in reason
    assert "no gate.accept_schema_change declares it (schema_change)" in reason


def test_a_declaration_accepts_any_change_or_only_its_columns() -> None:
    anything = evaluate(OLD, NEW, AcceptSchemaChange("new features"), compared_with="champion v3", source="tag")
    zone_only = AcceptSchemaChange("a new zone opened", ("pickup_zone",))
    partly = evaluate(OLD, NEW, zone_only, compared_with="champion v3", source="tag")
    levels = {"columns": OLD["columns"], "categories": {"pickup_zone": ["alfama", "baixa", "belem", "parque"]}}
    covered = evaluate(OLD, levels, zone_only, compared_with="champion v3", source="tag")

    assert (anything.accepted, anything.declared, anything.refuses) == (True, "new features", False)
    assert (partly.accepted, partly.not_declared) == (False, ("temperature_c", "pickup_hour"))
    assert "('a new zone opened') does not name ['temperature_c', 'pickup_hour']" in schema_change.refusal(partly)
    assert (covered.accepted, covered.diff) == (True, {"levels_added": {"pickup_zone": ["parque"]}})


def test_no_schema_to_compare_is_recorded_and_refuses_nothing() -> None:
    check = evaluate(None, NEW, None, compared_with="champion v1", source="no schema to compare")

    assert not check.refuses
    assert check.note == "no schema to compare: champion v1 has neither tag nor signature"


def test_the_judge_refuses_by_schema_change_and_round_trips_the_record() -> None:
    check = evaluate(OLD, NEW, None, compared_with="champion v3", source="tag")

    decision = decide(1.0, 2.0, direction="minimize", rules=GateRules(), holdout_rows=100, schema=check)
    accepted = evaluate(OLD, NEW, AcceptSchemaChange("new features"), compared_with="champion v3", source="tag")
    passed = decide(1.0, 2.0, direction="minimize", rules=GateRules(), holdout_rows=100, schema=accepted)

    assert (decision.promote, decision.refused_by) == (False, "schema_change")
    assert decision.to_dict()["schema_diff"]["diff"]["added"] == ["temperature_c"]
    assert GateDecision.from_dict(decision.to_dict()).schema_diff == check
    assert passed.promote
    assert passed.to_dict()["schema_diff"]["declared"] == "new features"


def test_the_declaration_round_trips_through_the_rules() -> None:
    rules = GateRules.from_dict({"accept_schema_change": {"reason": "zones", "columns": ["pickup_zone"]}})

    assert rules.accept_schema_change == AcceptSchemaChange("zones", ("pickup_zone",))
    assert GateRules.from_dict(rules.to_dict()) == rules


def test_against_a_serving_parent_the_levels_of_its_other_members_are_no_change() -> None:
    city = {"columns": OLD["columns"], "categories": {"pickup_zone": ["alfama", "baixa"]}}
    union = {"columns": OLD["columns"], "categories": {"pickup_zone": ["alfama", "baixa", "mitte", "paulista"]}}
    new_zone = {"columns": OLD["columns"], "categories": {"pickup_zone": ["alfama", "baixa", "parque"]}}

    subset = evaluate(union, city, None, compared_with="parent t.global v1", source="tag", parent=True)
    added = evaluate(union, new_zone, None, compared_with="parent t.global v1", source="tag", parent=True)

    assert (subset.refuses, subset.diff) == (False, {})
    assert subset.note == "levels that only the parent's other member cities have are not compared"
    assert added.refuses
    assert added.diff == {"levels_added": {"pickup_zone": ["parque"]}}
