"""Run a suite on a snapshot with GX Core 1.x and turn the result into a verdict a person can read."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from airflow_ml.validation.report import exception_message
from airflow_ml.validation.unsafe_arguments import argument_problems, condition_columns

_LOG = logging.getLogger(__name__)

#: How many unexpected values a failure shows.
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold."""

    expectation: str
    column: str | None
    severity: str
    observed: Any
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[Any]
    error: str | None = None
    source: str | None = None

    def describe(self) -> str:
        """One line: what failed, where, with what."""
        parts = [f"[{self.severity}] {self.expectation}"]
        if self.column:
            parts.append(f"column {self.column!r}")
        if self.error:
            parts.append(f"could not run: {self.error}")
        if self.unexpected_count is not None:
            percent = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            parts.append(f"{self.unexpected_count} unexpected row(s){percent}")
        if self.observed is not None:
            parts.append(f"observed {self.observed!r}")
        if self.sample:
            parts.append(f"e.g. {self.sample!r}")
        if self.source:
            parts.append(f"defined at {self.source}")
        return f"{parts[0]} {', '.join(parts[1:])}".rstrip()


@dataclass(frozen=True)
class Verdict:
    """Outcome of a validation: ``passed``, ``warned`` (only ``warn`` expectations failed) or ``failed``."""

    status: str
    suite: str
    suite_file: str
    evaluated: int
    failed_errors: int
    failed_warnings: int
    row_count: int
    failures: list[Failure] = field(default_factory=list)
    #: What was left out on purpose, e.g. a GX checkpoint's actions, which are never run.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the run may go on."""
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form for XCom, MLflow and the summary table."""
        return asdict(self)

    def summary(self) -> str:
        """A readable multi-line summary for the task log."""
        head = (
            f"validation {self.status.upper()}: suite {self.suite!r} on {self.row_count} rows, "
            f"{self.evaluated} expectation(s), {self.failed_errors} error(s), {self.failed_warnings} warning(s)"
        )
        lines = [head, *(f"  - {failure.describe()}" for failure in self.failures)]
        lines += [f"  note: {note}" for note in self.notes]
        if self.failures:
            lines.append(
                f"  fix the data, or, if an expectation is wrong, edit it where it is defined (suite {self.suite_file})"
            )
        return "\n".join(lines)


def headline(verdict: dict[str, Any], shown: int = 3) -> str:
    """One line for a run's reason: the status and the first failed ``error`` expectations of a verdict."""
    if verdict["status"] != "failed":
        return f"validation {verdict['status']}: suite {verdict['suite']!r}, {verdict['failed_warnings']} warning(s)"
    errors = [f for f in verdict["failures"] if f["severity"] == "error"]
    named = [f"{f['expectation']} on {f['column']!r}" if f.get("column") else f["expectation"] for f in errors]
    more = f" and {len(named) - shown} more" if len(named) > shown else ""
    return (
        f"validation failed: {verdict['failed_errors']} error(s) in suite {verdict['suite']!r}: "
        + "; ".join(named[:shown])
        + more
    )


def validate_frame(frame: pd.DataFrame, suite: dict[str, Any], *, suite_file: str) -> Verdict:
    """Validate ``frame`` against ``suite`` (a GX 1.x suite as a dict) with an ephemeral GX context.

    Each expectation's ``meta.severity`` is ``error`` (the default; the verdict fails) or ``warn``.
    """
    return run_suite(frame, suite, suite_file=suite_file)[0]


def run_suite(
    frame: pd.DataFrame, suite: dict[str, Any], *, suite_file: str, schema: pd.DataFrame | None = None
) -> tuple[Verdict, dict[str, Any]]:
    """Like :func:`validate_frame`, and also return GX's full result as a JSON-friendly dict.

    GX judges every expectation; what it is handed is cut to what each needs (see :func:`plan_columns`):
    the expectations that read rows get only the columns the suite names, and those that look at the
    table's columns (their set, count, order or types) get the columns without their rows. ``frame`` may
    therefore hold only the columns :func:`plan_columns` asks for, with ``schema`` (no rows, every column,
    as :func:`airflow_ml.data.snapshot.read_snapshot_schema` gives it) standing for the whole table;
    without ``schema`` the frame is the whole table.

    One pass with GX's ``BASIC`` result format, at most :data:`SAMPLE_SIZE` unexpected values each: every
    expectation, passed or not, comes back with what GX observed (``observed_value``, or the unexpected
    count of the rows it checked), which the report shows. ``BOOLEAN_ONLY`` computes the same metrics and
    drops them; ``SUMMARY`` adds value counts of the unexpected values, which nothing here reads. Each
    expectation's configuration also carries GX's own one-sentence rendering of its arguments
    (``rendered_content``), as GX's Data Docs show it.
    """
    import great_expectations as gx

    unsafe = [p for e in suite["expectations"] for p in argument_problems(e.get("kwargs") or {})]
    if unsafe:  # check_suite refuses them first; this guards any other caller
        raise ValueError(f"suite {suite['name']!r} is refused: " + "; ".join(unsafe))
    whole = frame.iloc[:0] if schema is None else schema
    plan = plan_columns(suite, list(whole.columns))
    # Each expectation carries its position, to put GX's results (grouped by metric) back in suite order.
    expectations = [{**e, "meta": {**(e.get("meta") or {}), _POSITION: i}} for i, e in enumerate(suite["expectations"])]
    groups = [
        ([e for i, e in enumerate(expectations) if i not in plan.on_schema], _rows(frame, plan.columns)),
        ([e for i, e in enumerate(expectations) if i in plan.on_schema], whole),
    ]
    outcomes = []
    with _ENGINE_LOCK, _without_batch_fingerprint():
        batches = _engine()
        for chosen, data in groups:
            if not chosen:
                continue
            batch = batches.get_batch(batch_parameters={"dataframe": data})
            outcome = batch.validate(
                gx.ExpectationSuite(name=suite["name"], expectations=chosen),
                result_format={"result_format": "BASIC", "partial_unexpected_count": SAMPLE_SIZE},
            )
            _render_arguments(outcome.results)
            outcomes.append(outcome.to_json_dict())
    result = _merged(outcomes)
    items = result["results"]
    for item in items:
        item["expectation_config"]["meta"].pop(_POSITION, None)
    return judge(items, suite=suite, suite_file=suite_file, row_count=len(frame)), result


def judge(items: list[dict[str, Any]], *, suite: dict[str, Any], suite_file: str, row_count: int) -> Verdict:
    """The verdict of GX's results ``items`` (JSON dicts, in suite order) on ``row_count`` rows."""
    failures = [_failure(item) for item in items if not item["success"]]
    failures.sort(key=lambda f: f.severity != "error")  # stable: errors first, each group in suite order
    errors = sum(f.severity == "error" for f in failures)
    warnings = len(failures) - errors
    status = "failed" if errors else "warned" if warnings else "passed"
    return Verdict(status, suite["name"], suite_file, len(items), errors, warnings, row_count, failures)


def _rows(frame: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    """The frame cut to ``columns`` (itself when it holds just those already)."""
    return frame if columns is None or list(frame.columns) == columns else frame[[c for c in columns if c in frame]]


def _merged(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """GX's results of the row and the schema passes as one result, in suite order, its statistics recounted."""
    # A suite of no expectations runs no pass: GX's own result for it, nothing evaluated.
    result = dict(outcomes[0]) if outcomes else {"success": True, "meta": {}}
    items = sorted((item for outcome in outcomes for item in outcome["results"]), key=_position)
    passed = sum(bool(item["success"]) for item in items)
    result["results"] = items
    result["success"] = passed == len(items)
    result["statistics"] = {
        "evaluated_expectations": len(items),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(items) - passed,
        "success_percent": passed / len(items) * 100 if items else None,  # as GX computes it
    }
    return result


def _render_arguments(results: list[Any]) -> None:
    """Give each result's expectation configuration GX's prescriptive rendering (a sentence of its arguments).

    GX builds a few pydantic models per argument for it (tens of ms an expectation on a busy machine), so
    a process renders each configuration once: a worker validating many cities that share a base suite
    renders its expectations once. A renderer that fails leaves the configuration as it is: the report then
    lists the arguments one by one.
    """
    from great_expectations.render.renderer.inline_renderer import InlineRenderer

    for item in results:
        config = item.expectation_config
        if config is None:
            continue
        key = _render_key(config)
        rendered = _RENDERED.get(key) if key else None
        if rendered is None:
            try:
                rendered = InlineRenderer(render_object=config).get_rendered_content()
            except Exception:  # noqa: BLE001 - rendering is a courtesy: the validation stands without it
                _LOG.debug("GX could not render %s", config.type, exc_info=True)
                continue
            if key:
                if len(_RENDERED) >= _RENDERED_MAX:
                    _RENDERED.clear()
                _RENDERED[key] = rendered
        config.rendered_content = list(rendered)


#: Renderings made in this process, by configuration (type, arguments, meta): at most _RENDERED_MAX.
_RENDERED: dict[str, list[Any]] = {}
_RENDERED_MAX = 4096


def _render_key(config: Any) -> str | None:
    meta = {k: v for k, v in (config.meta or {}).items() if k != _POSITION}
    try:
        # The description is part of the rendering: two cities' same check with their own words keep them.
        described = [getattr(config, "description", None), getattr(config, "notes", None)]
        return json.dumps([config.type, config.kwargs, meta, described], sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys of mixed types: rendered each time, not cached
        return None


_POSITION = "airflow_ml_position"


def _position(item: dict[str, Any]) -> int:
    return int(item["expectation_config"]["meta"][_POSITION])


def _failure(item: dict[str, Any]) -> Failure:
    config = item["expectation_config"]
    meta = config.get("meta") or {}
    details = item.get("result") or {}
    return Failure(
        expectation=config["type"],
        column=config["kwargs"].get("column"),
        severity=meta.get("severity", "error"),
        observed=_plain(details.get("observed_value")),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        sample=[_plain(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
        error=exception_message(item.get("exception_info")),
        source=meta.get("source"),
    )


#: Expectations that look at the table's columns (their set, count, order, presence or types), never its rows:
#: GX judges them on the columns without rows, so that the rows it is handed can be cut to the named columns.
_ON_SCHEMA = {
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
    "expect_column_to_exist",
    "expect_column_type_to_be",
}
#: Table-level expectations that count rows and read no column but their row condition's.
_ROW_COUNTS = {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
_COLUMN_DOMAINS = {"column", "column_pair", "multicolumn"}


@dataclass(frozen=True)
class ColumnPlan:
    """What GX is handed: the rows of ``columns`` (None: of every column) and the schema for ``on_schema``."""

    columns: list[str] | None
    #: Positions in the suite of the expectations judged on the columns without rows.
    on_schema: frozenset[int]


def plan_columns(suite: dict[str, Any], available: list[str]) -> ColumnPlan:
    """The columns whose rows GX needs, and which expectations it judges on the table's columns alone.

    GX filters and copies the frame it is handed for every column-map expectation, so handing it only the
    named columns saves time and memory in proportion to the columns left out (and the snapshot's other
    columns need not be read at all). Expectations on the set, count, order, presence or types of the
    columns see every column, without rows. A table-level expectation of another kind (GX's SQL-only
    ones) gets every column's rows, as GX would.
    """
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    named: dict[str, None] = {}
    on_schema = set()
    whole = False
    for position, expectation in enumerate(suite["expectations"]):
        kind, kwargs = expectation["type"], expectation.get("kwargs") or {}
        if kind in _ON_SCHEMA:
            on_schema.add(position)
            continue
        for column in condition_columns(kwargs):  # the row filter reads its columns too
            named[column] = None
        if kind in _ROW_COUNTS:
            continue
        try:
            domain = str(getattr(get_expectation_impl(kind), "domain_type", "")).rsplit(".", 1)[-1].lower()
        except ExpectationNotFoundError:
            domain = ""  # GX reports it; nothing to save
        if domain not in _COLUMN_DOMAINS:
            whole = True
        for key in ("column", "column_A", "column_B"):
            if isinstance(kwargs.get(key), str):
                named[kwargs[key]] = None
        for column in kwargs.get("column_list") or []:
            named[column] = None
    return ColumnPlan(None if whole else [c for c in available if c in named], frozenset(on_schema))


def columns_to_validate(suite: dict[str, Any], available: list[str]) -> list[str] | None:
    """The columns whose rows GX needs (:func:`plan_columns`); None: every column's."""
    return plan_columns(suite, available).columns


_ENGINE_LOCK = threading.RLock()


@functools.cache
def _engine() -> Any:
    """The process's GX batch definition for in-memory frames, in an ephemeral context made once per process.

    A task process (or a worker that runs several tasks) builds its context once; each validation is then one
    batch of it. GX's import is paid once per worker when tasks fork warm (:mod:`airflow_ml.worker_preload`).
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return (
        context.data_sources.add_pandas("snapshot")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
    )


@contextlib.contextmanager
def _without_batch_fingerprint() -> Iterator[None]:
    """Skip GX's md5 of the whole frame (``pandas_data_fingerprint``, computed twice per validation).

    It costs about 0.3 s per million rows each time and only labels the batch; the snapshot's content
    hash already fingerprints these exact rows. GX fingerprints frames under ``HASH_THRESHOLD`` bytes.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    threshold = pandas_execution_engine.HASH_THRESHOLD
    pandas_execution_engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        pandas_execution_engine.HASH_THRESHOLD = threshold


def _plain(value: Any) -> Any:
    """Numpy scalars and timestamps as plain JSON-friendly values."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, (str, int, float, bool, type(None), list, dict)):
        return value
    return str(value)
