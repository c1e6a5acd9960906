"""The schema-change rule of the gate: a challenger whose inputs differ from the champion's needs a declaration.

A model's schema (:mod:`airflow_ml.ml.model_schema` reads it) is ``{"columns": {name: type}, "categories":
{column: [levels]}}``: the input columns with their MLflow signature types, and the categorical levels its
preprocessor learnt. The challenger's is compared with the champion's (or the serving parent's): columns added
or removed, a type changed, a column that became (or stopped being) categorical, levels added or removed. A
change is refused unless the template declares it (``gate.accept_schema_change: {reason, columns}``, only the
named columns when ``columns`` is given). Integer and floating types count as one (``numeric``): an integer
column that gains a missing value is inferred as ``double`` without any change to what the model sees (its
preprocessor turns every numeric feature into float64). Pure Python, free of numpy at import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from airflow_ml.ml.frozen_settings import FrozenSettings

#: Signature types that are one kind for the comparison: the preprocessor reads them all as float64.
NUMERIC = frozenset({"integer", "long", "float", "double"})


def _kind(type_name: str) -> str:
    return "numeric" if type_name in NUMERIC else type_name


@dataclass(frozen=True)
class AcceptSchemaChange(FrozenSettings):
    """The template's declaration of a schema change (``gate.accept_schema_change``); ``from_dict`` is strict.

    Attributes:
        reason: Why the change is wanted; recorded.
        columns: The only columns whose change is accepted; None: any change.
    """

    reason: str
    columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.columns is not None:  # a list from the spec's dump or from_dict: one form, so equality holds
            object.__setattr__(self, "columns", tuple(self.columns))


@dataclass(frozen=True)
class SchemaCheck:
    """The comparison of the challenger's schema with the baseline's, recorded as the decision's ``schema_diff``.

    Attributes:
        compared_with: What the challenger was compared with, e.g. ``champion v3``.
        source: How the baseline's schema was read (its tag, or its MLflow signature for an older version).
        diff: What changed (empty: nothing); see :func:`diff`.
        accepted: The template's ``accept_schema_change`` covers every changed column.
        declared: The declaration's reason when the template has one (whether or not it covers the change).
        not_declared: Changed columns the declaration does not cover (all of them without a declaration).
        note: Why nothing was compared (no schema to compare), else empty.
    """

    compared_with: str
    source: str = ""
    diff: Mapping[str, Any] | None = None
    accepted: bool = False
    declared: str | None = None
    not_declared: tuple[str, ...] = ()
    note: str = ""

    @property
    def refuses(self) -> bool:
        """A change that no declaration accepts."""
        return bool(self.diff) and not self.accepted

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        data = asdict(self)
        data["not_declared"] = list(self.not_declared)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SchemaCheck | None:
        """The check back from a decision record's ``schema_diff`` (after a JSON round trip)."""
        if data is None:
            return None
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        values["not_declared"] = tuple(values.get("not_declared") or ())
        return cls(**values)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What changed from schema ``old`` to ``new``; keys only for what changed, so no change is ``{}``.

    Keys: ``added`` and ``removed`` (columns), ``type_changed`` (``{column: [old, new]}``), ``categorical``
    (``{column: [was, is]}``), ``levels_added`` and ``levels_removed`` (``{column: [levels]}``).
    """
    old_columns, new_columns = dict(old.get("columns") or {}), dict(new.get("columns") or {})
    old_levels, new_levels = dict(old.get("categories") or {}), dict(new.get("categories") or {})
    both = [c for c in new_columns if c in old_columns]
    changes: dict[str, Any] = {
        "added": [c for c in new_columns if c not in old_columns],
        "removed": [c for c in old_columns if c not in new_columns],
        "type_changed": {
            c: [old_columns[c], new_columns[c]] for c in both if _kind(old_columns[c]) != _kind(new_columns[c])
        },
        "categorical": {c: [c in old_levels, c in new_levels] for c in both if (c in old_levels) != (c in new_levels)},
        "levels_added": {},
        "levels_removed": {},
    }
    for column in (c for c in both if c in old_levels and c in new_levels):
        before, after = set(map(str, old_levels[column])), set(map(str, new_levels[column]))
        if after - before:
            changes["levels_added"][column] = sorted(after - before)
        if before - after:
            changes["levels_removed"][column] = sorted(before - after)
    return {key: value for key, value in changes.items() if value}


def changed_columns(changes: Mapping[str, Any]) -> list[str]:
    """Every column a :func:`diff` names, in order of first mention."""
    names: list[str] = []
    for value in changes.values():
        names.extend(value if isinstance(value, list) else list(value))
    return list(dict.fromkeys(names))


def evaluate(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    accept: AcceptSchemaChange | None,
    *,
    compared_with: str,
    source: str,
    parent: bool = False,
) -> SchemaCheck:
    """Compare the challenger's schema ``new`` with the baseline's ``old`` and apply the template's declaration.

    With ``parent`` (the baseline is the fallback parent that serves the city), levels the parent has and the
    city's challenger lacks are no change: the parent learnt the union of its member cities' levels.
    """
    if old is None or new is None:
        whose = "the challenger" if new is None else compared_with
        return SchemaCheck(compared_with, source, note=f"no schema to compare: {whose} has neither tag nor signature")
    changes = diff(old, new)
    note = ""
    if parent and changes.pop("levels_removed", None):
        note = "levels that only the parent's other member cities have are not compared"
    if not changes:
        return SchemaCheck(compared_with, source, diff={}, note=note)
    touched = changed_columns(changes)
    if accept is None:
        return SchemaCheck(compared_with, source, changes, False, None, tuple(touched), note)
    not_declared = tuple(c for c in touched if accept.columns is not None and c not in accept.columns)
    return SchemaCheck(compared_with, source, changes, not not_declared, accept.reason, not_declared, note)


def describe(changes: Mapping[str, Any], *, limit: int = 5) -> str:
    """The diff in one line, at most ``limit`` items of each list: ``column(s) added ['x']; levels added ...``."""

    def few(values: Sequence[Any]) -> str:
        more = f" and {len(values) - limit} more" if len(values) > limit else ""
        return f"{list(values[:limit])}{more}"

    parts = []
    for key, label in (("added", "column(s) added"), ("removed", "column(s) removed")):
        if changes.get(key):
            parts.append(f"{label} {few(changes[key])}")
    for column, (was, now) in (changes.get("type_changed") or {}).items():
        parts.append(f"{column} type {was} -> {now}")
    for column, (was, _now) in (changes.get("categorical") or {}).items():
        parts.append(f"{column} {'no longer' if was else 'now'} categorical")
    for key, label in (("levels_added", "levels added"), ("levels_removed", "levels removed")):
        for column, levels in (changes.get(key) or {}).items():
            parts.append(f"{column} {label} {few(levels)}")
    return "; ".join(parts)


def refusal(check: SchemaCheck) -> str:
    """Why a challenger with an undeclared schema change is refused, with the diff and the fix."""
    if check.declared is None:
        declared = "no gate.accept_schema_change declares it"
    else:
        declared = f"gate.accept_schema_change ({check.declared!r}) does not name {list(check.not_declared)}"
    return (
        f"the challenger's input schema differs from the {check.compared_with}'s: {describe(check.diff or {})}; "
        f"{declared} (schema_change); to promote it, declare it in the template's gate.accept_schema_change: "
        "{reason: '<why>', columns: [<changed columns>]}; champion kept"
    )
