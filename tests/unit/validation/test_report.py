"""The HTML report of a validation verdict (airflow_ml.validation.report), from real GX results."""

from __future__ import annotations

import re

import pandas as pd


def test_the_html_report_lists_every_expectation_and_escapes_the_data() -> None:
    from airflow_ml.validation.report import render_report
    from airflow_ml.validation.runner import run_suite

    frame = pd.DataFrame({"zone": ["<script>alert(1)</script>", "north", None]})
    suite = {
        "name": "small",
        "expectations": [
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "zone", "value_set": ["north"]}},
            {"type": "expect_column_to_exist", "kwargs": {"column": "zone"}, "meta": {"source": "zones.yaml:3"}},
        ],
    }

    verdict, result = run_suite(frame, suite, suite_file="zones.yaml")
    page = render_report(verdict.to_dict(), result, title="Validation of porto")

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<tr") == 3  # the header and one row per expectation
    assert "FAILED" in page
    assert "zones.yaml:3" in page
    assert "FAILED</span>" in page  # the status badge


def _rows(page: str) -> dict[str, str]:
    """Each body row of the report by its expectation type (the suite below has each type once)."""
    rows = re.findall(r"<tr[^>]*><td>.*?</tr>", page, flags=re.S)
    return {re.search(r'class="kind"><code>([a-z_]+)</code>', row).group(1): row for row in rows}  # type: ignore[union-attr]


def test_the_report_shows_what_gx_observed_for_passed_expectations_and_their_arguments_as_sentences() -> None:
    from airflow_ml.validation.report import render_report
    from airflow_ml.validation.runner import run_suite

    frame = pd.DataFrame({"fare": [4.0, 6.0, 8.0, 10.0], "hour": [1, 2, 30, 3]})
    suite = {
        "name": "fares",
        "expectations": [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 2, "max_value": 1000}},
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "fare", "min_value": 1, "max_value": 9}},
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "fare", "min_value": 0}},
            {"type": "expect_column_max_to_be_between", "kwargs": {"column": "hour", "max_value": 23}},
        ],
    }

    verdict, result = run_suite(frame, suite, suite_file="fares.yaml")
    rows = _rows(render_report(verdict.to_dict(), result, title="Validation of porto"))

    assert verdict.status == "failed"  # the max of hour, 30, is above 23
    passed = {kind: row for kind, row in rows.items() if "<td>passed" in row}
    assert set(passed) == {
        "expect_table_row_count_to_be_between",
        "expect_column_mean_to_be_between",
        "expect_column_values_to_be_between",
    }
    # What GX observed, passed expectations included: the row count, the mean, the unexpected count.
    assert '<td class="observed"><code>4</code></td>' in passed["expect_table_row_count_to_be_between"]
    assert '<td class="observed"><code>7</code></td>' in passed["expect_column_mean_to_be_between"]
    assert "0 unexpected of 4 rows" in passed["expect_column_values_to_be_between"]
    assert '<td class="observed"><code>30</code></td>' in rows["expect_column_max_to_be_between"]
    # The arguments as GX's own sentence, each value in <code>, not a dump of the kwargs.
    mean = passed["expect_column_mean_to_be_between"]
    assert "<code>fare</code> mean must be greater than or equal to <code>1</code>" in mean
    assert "less than or equal to <code>9</code>" in mean
    assert "Must have greater than or equal to <code>2</code>" in passed["expect_table_row_count_to_be_between"]
    assert "min_value" not in "".join(rows.values())
    # Failures first.
    assert next(iter(rows)) == "expect_column_max_to_be_between"


def test_the_report_is_one_self_contained_narrow_page() -> None:
    from airflow_ml.validation.report import render_report
    from airflow_ml.validation.runner import run_suite

    frame = pd.DataFrame({"zone": [f"z{i}" for i in range(40)]})
    members = [f"z{i}" for i in range(30)]
    suite = {
        "name": "zones",
        "expectations": [
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "zone", "value_set": members}}
        ],
    }

    verdict, result = run_suite(frame, suite, suite_file="zones.yaml")
    page = render_report(verdict.to_dict(), result, title="Validation of porto")

    for external in ("<script", "<link", "src=", "href=", "http://", "https://", "@import", "url("):
        assert external not in page, external
    assert 'name="viewport"' in page
    assert page.count("<th>") == 3  # outcome, expectation, observed: fits the MLflow artifact pane
    row = _rows(page)["expect_column_values_to_be_in_set"]
    assert "<code>z11</code>" in row  # the value set is cut after 12 members, and the rest counted
    assert "<code>z12</code>" not in row
    assert "(+18 more)" in row
    assert "10 unexpected (25.00%) of 40 rows" in row
    assert "e.g. <code>z30</code>" in row


def test_a_result_without_gx_rendering_lists_the_arguments_by_name() -> None:
    from airflow_ml.validation.report import arguments_html

    config = {"type": "expect_x", "kwargs": {"column": "a<b", "min_value": 1500000, "batch_id": "ignored"}}

    assert arguments_html(config) == "column <code>a&lt;b</code> · min_value <code>1500000</code>"


def test_values_are_shown_as_they_ran_spaces_of_a_regex_and_every_digit_of_a_number_kept() -> None:
    from airflow_ml.validation.report import arguments_html
    from airflow_ml.validation.runner import run_suite

    frame = pd.DataFrame({"a": ["a xb  c"], "y": [2024]})
    suite = {
        "name": "s",
        "meta": {},
        "expectations": [
            {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "a", "regex": "^a .b  c$"}},
            {
                "type": "expect_column_max_to_be_between",
                "kwargs": {"column": "y", "min_value": 1234567.0, "max_value": 0.1 + 0.2},
            },
            {"type": "expect_column_min_to_be_between", "kwargs": {"column": "y", "max_value": 2024}},
        ],
    }
    _, result = run_suite(frame, suite, suite_file="s")
    shown = [arguments_html(item["expectation_config"]) for item in result["results"]]

    assert "<code>^a .b  c$</code>" in shown[0]
    assert "<code>1234567</code>" in shown[1]
    assert "<code>0.30000000000000004</code>" in shown[1]
    assert "<code>2024</code>" in shown[2]
    assert all("  " not in piece for text in shown for piece in re.split(r"<code>.*?</code>", text))


def test_a_check_that_ran_on_a_sample_says_so_in_its_row() -> None:
    from airflow_ml.validation.report import observed_html

    item = {"success": True, "result": {"observed_value": 12.5}, "expectation_config": {"type": "x", "kwargs": {}}}

    assert "sample" not in observed_html(item)
    shown = observed_html({**item, "airflow_ml_sampled": {"rows": 500, "of": 10_000, "seed": 3}})
    assert shown == "<code>12.5</code><br>on a seeded sample of 500 of 10,000 rows"
