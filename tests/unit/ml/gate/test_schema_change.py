"""The schema-change rule (airflow_ml.ml.gate.schema_change): the diff, the declaration, and the judge's refusal."""

from __future__ import annotations

from airflow_ml.ml.gate import schema_change
from airflow_ml.ml.gate.judge import decide
from airflow_ml.ml.gate.records import GateDecision
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.gate.schema_change import AcceptSchemaChange, LevelTolerance, diff, evaluate, fingerprints

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


NEW_PRINT = fingerprints(diff(OLD, NEW))


def test_a_declaration_accepts_the_change_it_names_on_the_columns_it_names() -> None:
    anything = evaluate(
        OLD, NEW, AcceptSchemaChange("new features", change=NEW_PRINT), compared_with="champion v3", source="tag"
    )
    levels = {"columns": OLD["columns"], "categories": {"pickup_zone": ["alfama", "baixa", "belem", "parque"]}}
    zone_only = AcceptSchemaChange("a new zone opened", ("pickup_zone",), fingerprints(diff(OLD, levels)))
    partly = evaluate(OLD, NEW, zone_only, compared_with="champion v3", source="tag")
    covered = evaluate(OLD, levels, zone_only, compared_with="champion v3", source="tag")

    assert len(NEW_PRINT) == 4  # temperature_c added, pickup_hour's type, pickup_zone's levels added and removed
    assert all(p.startswith("sha256:") and len(p) == 19 for p in NEW_PRINT)
    assert (anything.accepted, anything.declared, anything.refuses) == (True, "new features", False)
    assert (partly.accepted, partly.not_declared) == (False, ("temperature_c", "pickup_hour"))
    assert "('a new zone opened') does not name ['temperature_c', 'pickup_hour']" in schema_change.refusal(partly)
    assert (covered.accepted, covered.diff) == (True, {"levels_added": {"pickup_zone": ["parque"]}})


def test_a_declaration_of_one_change_refuses_the_next_one_with_its_diff_and_fingerprint() -> None:
    later = {"columns": {**NEW["columns"], "wind_kmh": "double"}, "categories": NEW["categories"]}
    accept = AcceptSchemaChange("temperature added", change=NEW_PRINT)

    check = evaluate(OLD, later, accept, compared_with="champion v3", source="tag")

    assert check.refuses
    assert check.fingerprint == fingerprints(diff(OLD, later)) != NEW_PRINT
    [wind] = fingerprints({"added": ["wind_kmh"]})
    reason = schema_change.refusal(check)
    assert "column(s) added ['temperature_c', 'wind_kmh']" in reason
    assert f"accepts change {list(NEW_PRINT)}, which lacks {[wind]}" in reason
    assert f"change: {list(check.fingerprint)}" in reason


def test_a_declaration_without_a_change_accepts_nothing_and_the_refusal_names_the_field_and_value() -> None:
    check = evaluate(OLD, NEW, AcceptSchemaChange("new features"), compared_with="champion v3", source="tag")

    assert check.refuses
    reason = schema_change.refusal(check)
    assert "('new features') names no change (no change: field)" in reason
    assert f"gate.accept_schema_change: {{reason: '<why>', change: {list(NEW_PRINT)}, columns: " in reason


def test_a_declaration_whose_change_the_champion_already_has_is_stale() -> None:
    check = evaluate(
        NEW, NEW, AcceptSchemaChange("new features", change=NEW_PRINT), compared_with="champion v4", source="tag"
    )

    assert not check.refuses
    assert check.stale_declaration.startswith(
        f"gate.accept_schema_change ('new features', change {list(NEW_PRINT)}) has no"
    )
    assert (
        "no change left to accept: the champion v4's inputs and the challenger's agree; remove"
        in check.stale_declaration
    )


def test_a_stale_declaration_beside_tolerated_churn_does_not_claim_the_inputs_are_the_same() -> None:
    churned = {"columns": OLD["columns"], "categories": {"pickup_zone": ["alfama", "baixa", "belem", "parque"]}}
    tolerance = LevelTolerance(new_level_max_share=0.01)
    declared = AcceptSchemaChange("new features", change=NEW_PRINT)

    check = evaluate(
        OLD,
        churned,
        declared,
        compared_with="champion v4",
        source="t",
        tolerance=tolerance,
        new_level_shares={"pickup_zone": 0.002},
    )

    assert "no change left to accept (level churn within gate.level_tolerance aside)" in check.stale_declaration


def test_the_fingerprint_ignores_the_order_of_columns_and_levels() -> None:
    one = {"added": ["b", "a"], "levels_added": {"z": ["y", "x"], "c": ["q"]}}
    two = {"levels_added": {"c": ["q"], "z": ["x", "y"]}, "added": ["a", "b"]}

    assert fingerprints(one) == fingerprints(two) != fingerprints({"added": ["a"]})


def test_the_fingerprint_keeps_the_direction_of_a_type_or_categorical_change() -> None:
    to_text = {"columns": {"x": "string"}, "categories": {}}
    to_number = {"columns": {"x": "long"}, "categories": {}}
    categorical = {"columns": {"x": "string"}, "categories": {"x": ["a"]}}

    assert fingerprints(diff(to_number, to_text)) != fingerprints(diff(to_text, to_number))
    assert fingerprints(diff(to_text, categorical)) != fingerprints(diff(categorical, to_text))
    # A declaration of a change does not accept its revert.
    forward = AcceptSchemaChange("x is text now", change=fingerprints(diff(to_number, to_text)))
    assert evaluate(to_text, to_number, forward, compared_with="c", source="t").refuses


def test_one_logical_change_has_one_fingerprint_whatever_the_type_spelling_and_the_citys_levels() -> None:
    """The same column change in every city of a template: one declaration fits them all, retrain after retrain."""
    from_long = diff({"columns": {"x": "long"}}, {"columns": {"x": "string"}})
    from_double = diff({"columns": {"x": "double"}}, {"columns": {"x": "string"}})
    lisbon = {"levels_added": {"zone": ["parque"]}, "levels_removed": {"zone": ["belem"]}}
    berlin = {"levels_added": {"zone": ["mitte", "tegel"]}, "levels_removed": {"zone": ["tempelhof"]}}

    assert fingerprints(from_long) == fingerprints(from_double)
    assert fingerprints(lisbon) == fingerprints(berlin)
    # A retrain whose rare level is tolerated tonight (one item fewer) stays accepted by the same declaration.
    declared = AcceptSchemaChange("zones redrawn", change=fingerprints(lisbon))
    old = {"columns": {"zone": "string"}, "categories": {"zone": ["alfama", "belem"]}}
    tonight = {"columns": {"zone": "string"}, "categories": {"zone": ["alfama", "belem", "parque"]}}
    assert evaluate(old, tonight, declared, compared_with="c", source="t").accepted


def test_rare_new_levels_and_removed_levels_are_tolerated_churn_listed_but_not_counted() -> None:
    store = {"columns": {"store_id": "string"}, "categories": {"store_id": ["s1", "s2", "s3"]}}
    churned = {"columns": {"store_id": "string"}, "categories": {"store_id": ["s1", "s2", "s4"]}}
    tolerance = LevelTolerance(new_level_max_share=0.01, removed_level_max_share=0.001)
    removed = {"store_id": 0.0005}

    rare, common = (
        evaluate(
            store,
            churned,
            None,
            compared_with="c",
            source="t",
            tolerance=tolerance,
            new_level_shares={"store_id": share},
            removed_level_shares=removed,
        )
        for share in (0.004, 0.2)
    )
    strict = evaluate(store, churned, None, compared_with="c", source="t", new_level_shares={"store_id": 0.004})

    assert not rare.refuses
    assert rare.diff == {"levels_added": {"store_id": ["s4"]}, "levels_removed": {"store_id": ["s3"]}}
    assert rare.tolerated == {
        "levels_added": {"store_id": ["s4"]},
        "levels_removed": {"store_id": ["s3"]},
        "new_level_shares": {"store_id": 0.004},
        "removed_level_shares": {"store_id": 0.0005},
    }
    assert (rare.counted, rare.fingerprint) == ({}, None)
    assert common.refuses
    assert common.counted == {"levels_added": {"store_id": ["s4"]}}
    assert "tolerated level churn (gate.level_tolerance): store_id levels removed ['s3']" in schema_change.refusal(
        common
    )
    assert strict.refuses  # without a tolerance (LevelTolerance 0, removed counted) every level counts


def test_a_removed_level_that_held_many_of_the_champions_rows_counts_whatever_the_default() -> None:
    """A zone's feed outage removes a large level: the default tolerance refuses it; its share unknown, too."""
    zones = {"columns": {"zone": "string"}, "categories": {"zone": ["alfama", "baixa", "belem"]}}
    outage = {"columns": {"zone": "string"}, "categories": {"zone": ["alfama", "baixa"]}}

    def check(shares: dict[str, float] | None) -> schema_change.SchemaCheck:
        default = GateRules().level_tolerance
        return evaluate(
            zones, outage, None, compared_with="c", source="t", tolerance=default, removed_level_shares=shares
        )

    assert check({"zone": 0.3}).refuses
    assert check(None).refuses  # the champion's rows unreadable: the removed level counts
    assert not check({"zone": 0.0002}).refuses  # a retired rare level is churn


def test_no_schema_to_compare_is_recorded_and_refuses_nothing() -> None:
    check = evaluate(None, NEW, None, compared_with="champion v1", source="no schema to compare")

    assert not check.refuses
    assert check.note == "no schema to compare: champion v1 has neither tag nor signature"


def test_the_judge_refuses_by_schema_change_and_round_trips_the_record() -> None:
    check = evaluate(OLD, NEW, None, compared_with="champion v3", source="tag")

    decision = decide(1.0, 2.0, direction="minimize", rules=GateRules(), holdout_rows=100, schema=check)
    declared = AcceptSchemaChange("new features", change=NEW_PRINT)
    accepted = evaluate(OLD, NEW, declared, compared_with="champion v3", source="tag")
    passed = decide(1.0, 2.0, direction="minimize", rules=GateRules(), holdout_rows=100, schema=accepted)

    assert (decision.promote, decision.refused_by) == (False, "schema_change")
    assert decision.to_dict()["schema_diff"]["diff"]["added"] == ["temperature_c"]
    assert GateDecision.from_dict(decision.to_dict()).schema_diff == check
    assert passed.promote
    assert passed.to_dict()["schema_diff"]["declared"] == "new features"


def test_the_declaration_round_trips_through_the_rules() -> None:
    declared = {"reason": "zones", "columns": ["pickup_zone"], "change": NEW_PRINT}
    rules = GateRules.from_dict({"accept_schema_change": declared, "level_tolerance": {"new_level_max_share": 0.05}})

    assert rules.accept_schema_change == AcceptSchemaChange("zones", ("pickup_zone",), NEW_PRINT)
    assert rules.level_tolerance == LevelTolerance(new_level_max_share=0.05)
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


def test_a_level_declaration_accepts_its_own_revert_unless_it_bounds_the_shares() -> None:
    """Level items name no level: a declaration for z {a,b} -> {a,c} accepts {a,c} -> {a,b} and a relabel of
    every level, at any share. With max_level_share it accepts level changes only up to that share (the share
    shown in the refusal; an unknown share is over it)."""
    before = {"columns": {"z": "string"}, "categories": {"z": ["a", "b"]}}
    after = {"columns": {"z": "string"}, "categories": {"z": ["a", "c"]}}
    relabel = {"columns": {"z": "string"}, "categories": {"z": ["q"]}}
    change = fingerprints(diff(before, after))
    blanket = AcceptSchemaChange("b renamed c", ("z",), change)
    bounded = AcceptSchemaChange("b renamed c", ("z",), change, max_level_share=0.2)

    def check(accept: AcceptSchemaChange, old: dict, new: dict, share: float | None) -> schema_change.SchemaCheck:
        shares = None if share is None else {"z": share}
        return evaluate(
            old, new, accept, compared_with="c", source="t", new_level_shares=shares, removed_level_shares=shares
        )

    assert check(blanket, after, before, 0.5).accepted  # its own revert
    assert check(blanket, before, relabel, 1.0).accepted  # every level relabelled
    assert check(bounded, before, after, 0.1).accepted
    over = check(bounded, after, before, 0.5)
    assert (over.accepted, over.over_declared_share) == (False, {"levels_added:z": 0.5, "levels_removed:z": 0.5})
    assert "accepts level changes up to max_level_share" in schema_change.refusal(over)
    assert check(bounded, before, after, None).over_declared_share == {"levels_added:z": None, "levels_removed:z": None}
    assert schema_change.SchemaCheck.from_dict(over.to_dict()) == over
