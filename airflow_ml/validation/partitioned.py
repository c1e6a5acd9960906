"""Validate a frame too large for one process: the suite runs per group of partitions on Dask, merged into one verdict.

GX runs inside each worker's task on a group of neighbouring pandas partitions (a check; GX's fixed cost per run
would dominate if each of a snapshot's daily partitions were one: :mod:`.partition_groups` says how they are cut);
the client merges what the checks found into GX's own result format, so the verdict, the summary and the report
are those of :func:`runner.run_suite`. How an expectation is merged depends on its type, from :data:`MERGE_CLASSES`:

- ``rows``: a row-wise check (not null, in set, between, regex, column pairs...): each partition's unexpected,
  element and missing counts are summed, ``mostly`` is judged on the sums as GX judges it, and the first
  unexpected values are the first partitions' (exactly the whole frame's figures). A partition whose check
  could not run makes the merged one fail with its error. A type check on a column's dtype, which has no counts,
  must hold in every partition.
- ``every``: the columns of the table (exist, set, count, type): every partition has the same columns (a
  snapshot's parts share one schema), so each must pass; the first failure is shown.
- ``row_count``: the table's row count, the sum of the partitions' counts, judged by GX on a stand-in table of
  that many rows and no columns.
- ``extreme``: min, max and sum of a column, exact from the partitions' own min, max or sum (judged by GX on the
  column of those); with a ``row_condition`` they are sampled instead. A sum of floats may differ from the whole
  frame's in its last digits (the order of additions).
- ``distinct``: the distinct values of a column (to be in, contain or equal a set; their count), exact from the
  union of the partitions' distinct values, judged by GX on a stand-in column of those (one row per value, so
  only the figures of the distinct values, never row counts, are the whole frame's); refused with a
  ``row_condition``.
- ``sample``: distribution and aggregate checks that partitions cannot merge exactly (mean, median, quantiles,
  standard deviation, outliers, order): GX runs them on one seeded sample drawn uniformly across
  the partitions (``sample_rows``, 100,000 by default); their result carries ``airflow_ml_sampled`` and the
  verdict a note naming each, so the report says which checks were sampled.

A type not in the table (an expectation a newer GX adds) is refused before anything runs, as are the types that
need another table or a SQL database, and uniqueness checks (a duplicate pair split across partitions, or
left out of a sample, would pass): run on a sample, a row-wise check would count only the sample's
unexpected rows and could pass data that fails, so nothing is merged on a guess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from airflow_ml.validation.partition_groups import DEFAULT_ROWS_PER_CHECK, check_group, plan_groups
from airflow_ml.validation.report import exception_message
from airflow_ml.validation.runner import SAMPLE_SIZE, Verdict, columns_to_validate, judge, run_suite

ROWS, EVERY, ROW_COUNT, EXTREME, DISTINCT, SAMPLE = "rows", "every", "row_count", "extreme", "distinct", "sample"
#: Rows of the seeded sample the ``sample`` expectations run on, by default.
DEFAULT_SAMPLE_ROWS = 100_000
_ROWS = """value_lengths_to_be_between value_lengths_to_equal values_to_be_between values_to_be_dateutil_parseable
values_to_be_in_set values_to_be_in_type_list values_to_be_json_parseable values_to_be_null values_to_be_of_type
values_to_match_json_schema values_to_match_like_pattern values_to_match_like_pattern_list values_to_match_regex
values_to_match_regex_list values_to_match_strftime_format values_to_not_be_in_set values_to_not_be_null
values_to_not_match_like_pattern values_to_not_match_like_pattern_list values_to_not_match_regex
values_to_not_match_regex_list"""
_DISTINCT = """distinct_values_to_be_in_set distinct_values_to_contain_set distinct_values_to_equal_set
unique_value_count_to_be_between"""
_SAMPLED = """kl_divergence_to_be_less_than mean_to_be_between median_to_be_between most_common_value_to_be_in_set
proportion_of_non_null_values_to_be_between quantile_values_to_be_between stdev_to_be_between
value_z_scores_to_be_less_than values_to_be_decreasing values_to_be_increasing values_to_not_be_outliers"""
#: How each GX Core expectation type is judged over partitions (see the module's docstring).
MERGE_CLASSES: dict[str, str] = {
    **{f"expect_column_{name}": ROWS for name in _ROWS.split()},
    **{f"expect_column_{name}": DISTINCT for name in _DISTINCT.split()},
    **{f"expect_column_{name}": SAMPLE for name in _SAMPLED.split()},
    "expect_column_pair_values_a_to_be_greater_than_b": ROWS,
    "expect_column_pair_values_to_be_equal": ROWS,
    "expect_column_pair_values_to_be_in_set": ROWS,
    "expect_multicolumn_sum_to_equal": ROWS,
    "expect_multicolumn_values_to_be_equal": ROWS,
    "expect_select_column_values_to_be_unique_within_record": ROWS,
    "expect_column_to_exist": EVERY,
    "expect_column_type_to_be": EVERY,
    "expect_table_column_count_to_be_between": EVERY,
    "expect_table_column_count_to_equal": EVERY,
    "expect_table_columns_to_match_ordered_list": EVERY,
    "expect_table_columns_to_match_set": EVERY,
    "expect_table_row_count_to_be_between": ROW_COUNT,
    "expect_table_row_count_to_equal": ROW_COUNT,
    "expect_column_min_to_be_between": EXTREME,
    "expect_column_max_to_be_between": EXTREME,
    "expect_column_sum_to_be_between": EXTREME,
}
#: Types never run per partition, and why.
REFUSED = {
    "expect_table_row_count_to_equal_other_table": "it compares with another table",
    "expect_query_results_to_match_comparison": "it runs SQL queries",
    "unexpected_rows_expectation": "it runs a SQL query",
    **{
        f"expect_{name}": "uniqueness is not judged per partition or on a sample (a duplicate pair split across "
        "partitions, or left out of the sample, would pass): check the key upstream, or validate this client with "
        "training.engine: local"
        for name in (
            "column_values_to_be_unique",
            "compound_columns_to_be_unique",
            "column_proportion_of_unique_values_to_be_between",
        )
    },
}
_EXTREMES = {"expect_column_min_to_be_between": "min", "expect_column_max_to_be_between": "max"}
_CONDITION = ("row_condition", "condition_parser")


class PartitionedSuiteRefused(ValueError):
    """The suite has an expectation that cannot be judged over partitions; nothing was run."""


@dataclasses.dataclass(frozen=True)
class Refusal:
    """An expectation the partitions cannot merge: ``where`` it is defined (its ``meta.source``, ``<file>:<line>``,
    else its place in the suite), its ``kind`` (``... with a row_condition`` when the condition refuses it), ``why``."""

    where: str
    kind: str
    why: str


def refusals(suite: dict[str, Any]) -> list[Refusal]:
    """Each expectation of ``suite`` that cannot be judged over partitions (none: the suite runs on Dask).

    What :func:`merge_classes` refuses, one by one: ``airflow-ml lint`` reports each at its line for a city with
    ``training.engine: dask``, as the validate task would refuse the suite at run time.
    """
    found = (_classify(i, suite) for i in range(len(suite["expectations"])))
    return [f for f in found if isinstance(f, Refusal)]


def merge_classes(suite: dict[str, Any]) -> list[str]:
    """The merge class of each expectation of ``suite``, in order (see :data:`MERGE_CLASSES`).

    Raises:
        PartitionedSuiteRefused: naming each expectation that cannot be merged, where it is defined, and the fix.
    """
    found = [_classify(i, suite) for i in range(len(suite["expectations"]))]
    problems = [f"{f.where}: {f.kind}: {f.why}" for f in found if isinstance(f, Refusal)]
    if problems:
        raise PartitionedSuiteRefused(
            "these expectations cannot be validated partition by partition on Dask:\n  - "
            + "\n  - ".join(problems)
            + "\nremove them from the suite of this client, or validate it with training.engine: local"
        )
    return [f for f in found if isinstance(f, str)]


def _classify(i: int, suite: dict[str, Any]) -> str | Refusal:
    """The merge class of the suite's ``i``-th expectation, or why it has none."""
    expectation = suite["expectations"][i]
    kind = expectation["type"]
    found = MERGE_CLASSES.get(kind)
    conditioned = any((expectation.get("kwargs") or {}).get(k) for k in _CONDITION)
    if found == EXTREME and conditioned:
        found = SAMPLE  # the partitions' plain min or max would ignore the condition
    if found == DISTINCT and conditioned:
        # The partitions' distinct values would ignore the condition, and a sample could miss one.
        why = "its distinct values are merged exactly only without a row_condition: drop the condition"
        return Refusal(_where(i, suite), f"{kind} with a row_condition", why)
    if found is None:
        why = REFUSED.get(kind, "airflow-ml does not know how to merge its partitions' results")
        return Refusal(_where(i, suite), kind, why)
    return found


def _where(i: int, suite: dict[str, Any]) -> str:
    meta = suite["expectations"][i].get("meta") or {}
    return str(meta.get("source") or f"expectation {i + 1} of suite {suite['name']!r}")


def validate_partitions(
    frame: Any,
    suite: dict[str, Any],
    *,
    suite_file: str,
    part_rows: Sequence[int] | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
    client: Any = None,
    rows_per_check: int | None = DEFAULT_ROWS_PER_CHECK,
) -> tuple[Verdict, dict[str, Any]]:
    """Validate the Dask ``frame`` against ``suite``, by groups of partitions; as :func:`runner.run_suite` returns.

    Args:
        frame: A ``dask.dataframe.DataFrame`` (e.g. ``dask_snapshot.open_snapshot``'s).
        suite: The suite, as ``run_suite`` takes it.
        suite_file: The suite's file, named in the verdict.
        part_rows: The rows of each partition when known (a snapshot's manifest lists them); else counted first
            (one pass over the frame) when the suite has sampled checks or partitions are grouped.
        sample_rows: Rows of the seeded sample the ``sample`` expectations run on (all rows when fewer).
        seed: The sample's seed: the same seed and partitions give the same sample.
        client: A ``distributed.Client``; None runs on Dask's default scheduler.
        rows_per_check: The most rows one GX run (a check) validates, a group of neighbouring partitions bounded
            too by the workers' memory (:func:`partition_groups.plan_groups`); 0 or None: one check per partition.

    Raises:
        PartitionedSuiteRefused: before anything runs, when an expectation cannot be merged.
    """
    import dask
    import numpy as np
    import pandas as pd

    classes = merge_classes(suite)
    expectations = suite["expectations"]
    per_part = [i for i, c in enumerate(classes) if c in (ROWS, EVERY, ROW_COUNT)]
    extremes = [i for i, c in enumerate(classes) if c in (EXTREME, DISTINCT)]
    sampled = [i for i, c in enumerate(classes) if c == SAMPLE]
    columns = [str(c) for c in frame.columns]
    # Counted only when needed: a sample to draw, or several partitions to group (one is its own check).
    if (sampled or (rows_per_check and frame.npartitions > 1)) and part_rows is None:
        part_rows = _compute([frame.map_partitions(len)], client)[0].tolist()
    groups = plan_groups(frame, part_rows or [], rows_per_check=rows_per_check, client=client, compute=_compute)
    counts = [0] * frame.npartitions
    if sampled and part_rows:
        total = int(sum(part_rows))
        counts = (
            np.random.default_rng(seed)
            .multivariate_hypergeometric(np.asarray(part_rows, dtype=np.int64), min(sample_rows, total))
            .tolist()
        )
    sample_suite = _sub(suite, sampled)
    wanted = (columns_to_validate(sample_suite, columns) or columns) if sampled else []
    # One task per check takes its neighbouring partitions (each read by its own task), in order.
    parts, check = frame.to_delayed(), dask.delayed(check_group)
    checks = [
        check([parts[i] for i in run], list(run), _sub(suite, per_part), _partials(expectations, extremes, columns),
              [counts[i] for i in run], wanted, seed)
        for run in groups
    ]  # fmt: skip
    outcome = _compute(checks, client)
    row_count = sum(o["rows"] for o in outcome)
    items: dict[int, dict[str, Any]] = {}
    for position, index in enumerate(per_part):
        found = [o["items"][position] for o in outcome]
        items[index] = _merge_rows(found) if classes[index] == ROWS else _merge_every(found)
        if classes[index] == ROW_COUNT and not exception_message(items[index].get("exception_info")):
            rows = sum(int((f.get("result") or {}).get("observed_value") or 0) for f in found)
            items[index] = _on_stand_in(_stand_in_rows(rows), expectations[index], found[0])
    for index in extremes:
        partials = [o["partials"][index] for o in outcome]
        column = expectations[index]["kwargs"]["column"]
        values = pd.concat(partials, ignore_index=True)
        if classes[index] == DISTINCT:
            values = values.drop_duplicates().reset_index(drop=True)
        stand_in = _frame({column: values} if column in columns else {})
        items[index] = _on_stand_in(stand_in, expectations[index], None)
    notes = []
    if sampled:
        sample = pd.concat([o["sample"] for o in outcome], ignore_index=True)
        mark = {"rows": len(sample), "of": row_count, "seed": seed}
        for position, item in enumerate(run_suite(sample, sample_suite, suite_file=suite_file)[1]["results"]):
            items[sampled[position]] = {**item, "airflow_ml_sampled": mark}
        notes = [_sampled_note(expectations[i], mark) for i in sampled]
    ordered = [items[i] for i in range(len(expectations))]
    verdict = judge(ordered, suite=suite, suite_file=suite_file, row_count=row_count)
    where = f"{len(outcome)} check(s) of {frame.npartitions} partition(s)"
    notes.append(f"validated on Dask in {where} (airflow_ml.validation.partitioned)")
    verdict = dataclasses.replace(verdict, notes=notes)
    return verdict, _result(suite, ordered, frame.npartitions, len(outcome))


def _merge_rows(found: list[dict[str, Any]]) -> dict[str, Any]:
    """One row-wise expectation's result over the partitions, as GX computes it on the whole frame."""
    broken = next((f for f in found if exception_message(f.get("exception_info"))), None)
    if broken is not None:
        return broken
    results = [f.get("result") or {} for f in found]
    if not all("unexpected_count" in r and "element_count" in r for r in results):
        return _merge_every(found)  # a dtype check: no counts, the same answer in every partition
    elements = sum(int(r["element_count"]) for r in results)
    unexpected = sum(int(r["unexpected_count"] or 0) for r in results)
    has_missing = all("missing_count" in r for r in results)
    missing = sum(int(r["missing_count"] or 0) for r in results) if has_missing else 0
    considered = elements - missing
    mostly = float((found[0]["expectation_config"].get("kwargs") or {}).get("mostly", 1.0))
    success = True if elements == 0 or considered == 0 else (considered - unexpected) / considered >= mostly
    total = unexpected / elements * 100 if elements > 0 else None
    merged = {**results[0], "element_count": elements, "unexpected_count": unexpected}
    if has_missing:
        merged["missing_count"] = missing
        merged["missing_percent"] = missing / elements * 100 if elements > 0 else None
        merged["unexpected_percent_total"] = total
        merged["unexpected_percent_nonmissing"] = unexpected / considered * 100 if considered > 0 else None
    merged["unexpected_percent"] = merged["unexpected_percent_nonmissing"] if has_missing else total
    if any("partial_unexpected_list" in r for r in results):
        merged["partial_unexpected_list"] = [v for r in results for v in r.get("partial_unexpected_list") or []][
            :SAMPLE_SIZE
        ]
    return {**found[0], "success": success, "result": merged}


def _merge_every(found: list[dict[str, Any]]) -> dict[str, Any]:
    return next((f for f in found if not f["success"]), found[0])


def _on_stand_in(stand_in: Any, expectation: dict[str, Any], config_of: dict[str, Any] | None) -> dict[str, Any]:
    """GX's judgement of one expectation on a stand-in frame; ``config_of``'s configuration (its row condition) kept."""
    kwargs = {k: v for k, v in (expectation.get("kwargs") or {}).items() if k not in _CONDITION}
    single = {"name": "stand-in", "expectations": [{**expectation, "kwargs": kwargs}]}
    item = run_suite(stand_in, single, suite_file="")[1]["results"][0]
    return item if config_of is None else {**item, "expectation_config": config_of["expectation_config"]}


def _stand_in_rows(rows: int) -> Any:
    import pandas as pd

    return pd.DataFrame(index=pd.RangeIndex(rows))  # GX counts its rows; no column is ever allocated


def _frame(columns: dict[str, Any]) -> Any:
    import pandas as pd

    return pd.DataFrame(columns) if columns else pd.DataFrame(index=pd.RangeIndex(0))


def _partials(
    expectations: list[dict[str, Any]], extremes: list[int], columns: list[str]
) -> dict[int, tuple[str, str]]:
    """Per ``extreme``/``distinct`` expectation on a frame's column: the column and min, max, sum or unique."""
    found = {}
    for index in extremes:
        column = expectations[index]["kwargs"]["column"]
        if column in columns:
            kind = expectations[index]["type"]
            found[index] = (column, "unique" if MERGE_CLASSES[kind] == DISTINCT else _EXTREMES.get(kind, "sum"))
    return found


def _sub(suite: dict[str, Any], indexes: list[int]) -> dict[str, Any]:
    return {**suite, "expectations": [suite["expectations"][i] for i in indexes]}


def _sampled_note(expectation: dict[str, Any], mark: dict[str, int]) -> str:
    column = (expectation.get("kwargs") or {}).get("column")
    what = f"{expectation['type']}" + (f" on {column!r}" if column else "")
    if mark["rows"] >= mark["of"]:
        return f"sampled: {what} ran on all {mark['of']:,} rows (the sample size covers the whole frame)"
    return (
        f"sampled: {what} ran on a seeded sample of {mark['rows']:,} of {mark['of']:,} rows (seed {mark['seed']}); "
        "its figures estimate the whole frame's"
    )


def _result(suite: dict[str, Any], items: list[dict[str, Any]], partitions: int, checks: int) -> dict[str, Any]:
    """GX's validation result's shape (what the report and the result file read) for the merged ``items``."""
    passed = sum(bool(i["success"]) for i in items)
    return {
        "success": passed == len(items),
        "suite_name": suite["name"],
        "results": items,
        "statistics": {
            "evaluated_expectations": len(items),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(items) - passed,
            "success_percent": passed / len(items) * 100 if items else None,
        },
        "meta": {"airflow_ml_partitions": partitions, "airflow_ml_checks": checks},
    }


def _compute(tasks: list[Any], client: Any) -> list[Any]:
    import dask

    if client is None:
        return list(dask.compute(*tasks))
    return list(client.gather(client.compute(tasks)))


def warm_workers(client: Any) -> None:
    """Have every worker of ``client`` import GX now, without waiting: a worker's first check would otherwise import
    it (seconds) only once the task has imported it itself and planned the checks."""
    client.run(_import_engine_soon, wait=False)  # Dask leaves only a coroutine function unawaited


async def _import_engine_soon() -> None:
    import asyncio

    await asyncio.to_thread(_import_engine)  # off the worker's event loop, which keeps answering meanwhile


def _import_engine() -> None:
    import great_expectations  # noqa: F401
