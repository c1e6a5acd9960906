"""Run a suite on a snapshot with GX Core 1.x and turn the result into a verdict a person can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

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
        if self.failures:
            lines.append(f"  fix the data, or edit the suite in {self.suite_file} if the expectation is wrong")
        return "\n".join(lines)


def validate_frame(frame: pd.DataFrame, suite: dict[str, Any], *, suite_file: str) -> Verdict:
    """Validate ``frame`` against ``suite`` (a GX 1.x suite as a dict) with an ephemeral GX context.

    Each expectation's ``meta.severity`` is ``error`` (the default; the verdict fails) or ``warn``.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    expectations = suite["expectations"]
    gx_suite = gx.ExpectationSuite(name=suite["name"], expectations=[dict(e) for e in expectations])
    batch = (
        context.data_sources.add_pandas("snapshot")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(
        gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
    )
    failures = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        if config is None:  # GX always sets it on a suite result; guard for the type checker
            continue
        details = item.result or {}
        error = _exception_message(item.exception_info)
        failures.append(
            Failure(
                expectation=config.type,
                column=config.kwargs.get("column"),
                severity=(config.meta or {}).get("severity", "error"),
                observed=_plain(details.get("observed_value")),
                unexpected_count=details.get("unexpected_count"),
                unexpected_percent=details.get("unexpected_percent"),
                sample=[_plain(v) for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]],
                error=error,
            )
        )
    errors = sum(f.severity == "error" for f in failures)
    warnings = len(failures) - errors
    status = "failed" if errors else "warned" if warnings else "passed"
    return Verdict(status, suite["name"], suite_file, len(result.results), errors, warnings, len(frame), failures)


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """The first exception message of a result: GX 1.x nests exception info per metric, older results are flat."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")
    return None


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
