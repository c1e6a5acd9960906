"""The HTML report of a validation verdict (airflow_ml.validation.report)."""

from __future__ import annotations

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
