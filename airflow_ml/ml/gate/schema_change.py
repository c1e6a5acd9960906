"""The schema-change rule of the gate: a challenger whose inputs differ from the champion's needs a declaration.

A model's schema (:mod:`airflow_ml.ml.model_schema` reads it) is ``{"columns": {name: type}, "categories":
{column: [levels]}}``: the input columns with their MLflow signature types, and the categorical levels its
preprocessor learnt. The challenger's is compared with the champion's (or the serving parent's): columns added
or removed, a type changed, a column that became (or stopped being) categorical, levels added or removed.
Integer and floating types count as one (``numeric``): an integer column that gains a missing value is inferred
as ``double`` without any change to what the model sees (its preprocessor turns every numeric feature into
float64).

**Level churn** (``gate.level_tolerance``) is no schema change: the new levels of a column that together hold at
most ``new_level_max_share`` of the challenger's training rows (a new store id, a new rare zone), and the levels
the challenger no longer has that together held at most ``removed_level_max_share`` of the champion's training
rows (a retired store id; a zone's feed outage that removed a large level still counts). They are listed in the
record (``tolerated``) but refuse nothing.

**What remains is refused unless the template declares it**: ``gate.accept_schema_change: {reason, change,
columns}``, where ``change`` lists the :func:`fingerprints` of the changed items, shown in the refusal. An item is
one column's change: added, removed, its type changed from one kind to another (direction kept: ``numeric ->
string`` is not ``string -> numeric``), became or stopped being categorical, gained or lost levels (which levels
is left out: the tolerance judges them, and one declaration then fits every city of a template with the same
change, whatever levels each one has). Types are compared by kind: integer and floating spellings are one
``numeric`` kind, so ``long -> string`` and ``double -> string`` are one item. A declaration accepts a change
whose items are all in its list; a later change with another item is refused again with that item's
fingerprint. Once nothing counts, the declaration accepts nothing and the record says it is stale
(``stale_declaration``). Without ``change`` it accepts nothing (the refusal shows the value to add). ``columns``
narrows the columns a declaration covers, ``max_level_share`` the shares of the level changes it accepts (any
by default: its items name no level, so it accepts its own revert). Pure Python.
"""

from __future__ import annotations

import hashlib
import json
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
        columns: The only columns whose change is accepted; None: any column.
        change: The :func:`fingerprints` of the changed items accepted; None (a declaration written before
            changes were fingerprinted): none is. One string is read as a list of one.
        max_level_share: Level items are accepted only while their levels hold at most this share of the
            challenger's (added) or champion's (removed) training rows, unknown: over; None: any share.
    """

    reason: str
    columns: tuple[str, ...] | None = None
    change: tuple[str, ...] | None = None
    max_level_share: float | None = None

    def __post_init__(self) -> None:
        if self.columns is not None:  # a list from the spec's dump or from_dict: one form, so equality holds
            object.__setattr__(self, "columns", tuple(self.columns))
        if isinstance(self.change, str):
            object.__setattr__(self, "change", (self.change,))
        elif self.change is not None:
            object.__setattr__(self, "change", tuple(self.change))


@dataclass(frozen=True)
class LevelTolerance(FrozenSettings):
    """Categorical-level churn that is no schema change (``gate.level_tolerance``).

    Attributes:
        new_level_max_share: New levels of a column that together hold at most this share of the challenger's
            training rows are tolerated; 0: every new level counts.
        removed_level_max_share: Levels the challenger no longer has that together held at most this share of
            the champion's training rows are tolerated; 0: every removed level counts.
    """

    new_level_max_share: float = 0.01
    removed_level_max_share: float = 0.001


#: Every level change counts (the comparison without a template's tolerance).
STRICT = LevelTolerance(new_level_max_share=0.0, removed_level_max_share=0.0)


@dataclass(frozen=True)
class SchemaCheck:
    """The comparison of the challenger's schema with the baseline's, recorded as the decision's ``schema_diff``.

    Attributes:
        compared_with: What the challenger was compared with, e.g. ``champion v3``.
        source: How the baseline's schema was read (its tag, or its MLflow signature for an older version).
        diff: What changed (empty: nothing); see :func:`diff`. The tolerated part is in it too.
        accepted: The template's ``accept_schema_change`` names this change (its fingerprint) and covers every
            changed column.
        declared: The declaration's reason when the template has one (whether or not it covers the change).
        not_declared: Changed columns the declaration does not cover (all of them without a declaration).
        note: Why nothing was compared (no schema to compare), else empty.
        tolerated: The level churn of ``diff`` that is no schema change (``gate.level_tolerance``), with
            ``new_level_shares`` and ``removed_level_shares`` (per column, the share of the challenger's, or
            the champion's, training rows its new, or removed, levels hold).
        fingerprint: The :func:`fingerprints` of what counts (``diff`` without ``tolerated``); None when nothing
            does.
        declared_change: The fingerprints the declaration names (None: none).
        stale_declaration: Why the declaration is stale (it names no change left to accept), else empty.
        over_declared_share: Per ``levels_added:<column>`` or ``levels_removed:<column>`` whose share is over the
            declaration's ``max_level_share``, that share (None: unknown); the declaration does not accept them.
    """

    compared_with: str
    source: str = ""
    diff: Mapping[str, Any] | None = None
    accepted: bool = False
    declared: str | None = None
    not_declared: tuple[str, ...] = ()
    note: str = ""
    tolerated: Mapping[str, Any] | None = None
    fingerprint: tuple[str, ...] | None = None
    declared_change: tuple[str, ...] | None = None
    stale_declaration: str = ""
    over_declared_share: Mapping[str, float | None] | None = None

    @property
    def counted(self) -> dict[str, Any]:
        """The part of ``diff`` that is a schema change (the tolerated level churn left out)."""
        return _without(self.diff or {}, self.tolerated or {})

    @property
    def refuses(self) -> bool:
        """A change that counts and that no declaration accepts."""
        return bool(self.counted) and not self.accepted

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        data = asdict(self)
        for key in ("not_declared", "fingerprint", "declared_change"):
            data[key] = None if data[key] is None else list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SchemaCheck | None:
        """The check back from a decision record's ``schema_diff`` (after a JSON round trip)."""
        if data is None:
            return None
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        values["not_declared"] = tuple(values.get("not_declared") or ())
        for key in ("fingerprint", "declared_change"):
            value = values.get(key)
            values[key] = (value,) if isinstance(value, str) else None if value is None else tuple(value)
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


def items(changes: Mapping[str, Any]) -> list[list[Any]]:
    """The changed items of a :func:`diff`, canonical: one per column and kind of change, type spellings as kinds,
    the direction of a type or categorical change kept, the levels left out (see the module's docstring)."""
    out: list[list[Any]] = []
    for key, value in changes.items():
        if key in ("added", "removed"):
            out += [[key, str(column)] for column in value]
        elif key == "type_changed":
            out += [[key, str(c), _kind(str(old)), _kind(str(new))] for c, (old, new) in value.items()]
        elif key == "categorical":
            out += [[key, str(c), bool(was), bool(now)] for c, (was, now) in value.items()]
        else:
            out += [[key, str(column)] for column in value]
    return sorted(out, key=lambda item: json.dumps(item))


def item_fingerprint(item: Sequence[Any]) -> str:
    """``sha256:`` and the first 12 hex digits of the item's canonical JSON."""
    body = json.dumps(list(item), separators=(",", ":"))
    return f"sha256:{hashlib.sha256(body.encode()).hexdigest()[:12]}"


def fingerprints(changes: Mapping[str, Any]) -> tuple[str, ...]:
    """The fingerprint of each changed item of ``changes`` (a :func:`diff`), sorted."""
    return tuple(sorted({item_fingerprint(item) for item in items(changes)}))


def tolerate(
    changes: Mapping[str, Any],
    tolerance: LevelTolerance,
    new_level_shares: Mapping[str, float],
    removed_level_shares: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The level churn of ``changes`` that ``tolerance`` lets through, with the shares it was judged on.

    Args:
        changes: A :func:`diff`.
        tolerance: The template's tolerance.
        new_level_shares: Per column of ``levels_added``, the share of the challenger's training rows its new
            levels hold together; a column without a share is never tolerated.
        removed_level_shares: Per column of ``levels_removed``, the share of the champion's training rows its
            removed levels held together; a column without a share (the champion's rows unreadable) is never
            tolerated.

    Returns:
        ``{"levels_added", "levels_removed", "new_level_shares", "removed_level_shares"}``, keys only when not
        empty.
    """
    out: dict[str, Any] = {}
    for key, shown, limit, shares in (
        ("levels_added", "new_level_shares", tolerance.new_level_max_share, new_level_shares),
        ("levels_removed", "removed_level_shares", tolerance.removed_level_max_share, removed_level_shares or {}),
    ):
        changed = changes.get(key) or {}
        kept = {c: levels for c, levels in changed.items() if c in shares and limit > 0 and shares[c] <= limit}
        if kept:
            out[key] = kept
            out[shown] = {c: float(shares[c]) for c in changed if c in shares}
    return out


def _without(changes: Mapping[str, Any], tolerated: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in changes.items():
        if key in ("levels_added", "levels_removed"):
            value = {c: v for c, v in value.items() if c not in (tolerated.get(key) or {})}
        if value:
            out[key] = value
    return out


def evaluate(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    accept: AcceptSchemaChange | None,
    *,
    compared_with: str,
    source: str,
    parent: bool = False,
    tolerance: LevelTolerance = STRICT,
    new_level_shares: Mapping[str, float] | None = None,
    removed_level_shares: Mapping[str, float] | None = None,
) -> SchemaCheck:
    """Compare the challenger's schema ``new`` with the baseline's ``old`` and apply the template's declaration.

    With ``parent`` (the baseline is the fallback parent that serves the city), levels the parent has and the
    city's challenger lacks are no change: the parent learnt the union of its member cities' levels. The level
    churn within ``tolerance`` (judged on the shares, see :func:`tolerate`) is listed, not counted; what counts
    is accepted only by a declaration naming each of its :func:`fingerprints` and covering its columns.
    """
    if old is None or new is None:
        whose = "the challenger" if new is None else compared_with
        return SchemaCheck(compared_with, source, note=f"no schema to compare: {whose} has neither tag nor signature")
    changes = diff(old, new)
    note = ""
    if parent and changes.pop("levels_removed", None):
        note = "levels that only the parent's other member cities have are not compared"
    tolerated = tolerate(changes, tolerance, new_level_shares or {}, removed_level_shares) or None
    counted = _without(changes, tolerated or {})
    declared = None if accept is None else accept.reason
    declared_change = None if accept is None else accept.change
    if not counted:
        stale = ""
        if accept is not None:
            churn = " (level churn within gate.level_tolerance aside)" if tolerated else ""
            stale = (
                f"gate.accept_schema_change ({accept.reason!r}, change {list(accept.change or ())}) has no change "
                f"left to accept{churn}: the {compared_with}'s inputs and the challenger's agree; remove the "
                "declaration"
            )
        return SchemaCheck(
            compared_with, source, changes, False, declared, (), note, tolerated, None, declared_change, stale
        )
    touched = changed_columns(counted)
    counted_print = fingerprints(counted)
    if accept is None:
        return SchemaCheck(compared_with, source, changes, False, None, tuple(touched), note, tolerated, counted_print)
    not_declared = tuple(c for c in touched if accept.columns is not None and c not in accept.columns)
    over = _over_share(counted, accept.max_level_share, new_level_shares or {}, removed_level_shares or {})
    accepted = not not_declared and not over and accept.change is not None and set(counted_print) <= set(accept.change)
    return SchemaCheck(
        compared_with,
        source,
        changes,
        accepted,
        declared,
        not_declared,
        note,
        tolerated,
        counted_print,
        declared_change,
        over_declared_share=over or None,
    )


def _over_share(
    counted: Mapping[str, Any], limit: float | None, added: Mapping[str, float], removed: Mapping[str, float]
) -> dict[str, float | None]:
    """The counted level changes whose share is over a declaration's ``max_level_share`` (unknown: over)."""
    if limit is None:
        return {}
    out: dict[str, float | None] = {}
    for key, shares in (("levels_added", added), ("levels_removed", removed)):
        for column in counted.get(key) or {}:
            if (share := shares.get(column)) is None or share > limit:
                out[f"{key}:{column}"] = None if share is None else float(share)
    return out


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
    """Why a challenger with an undeclared schema change is refused, with the diff, its fingerprint and the fix."""
    columns = changed_columns(check.counted)
    if check.declared is None:
        declared = "no gate.accept_schema_change declares it"
    elif check.not_declared:
        declared = f"gate.accept_schema_change ({check.declared!r}) does not name {list(check.not_declared)}"
    elif check.over_declared_share:
        shown = {k: "unknown" if v is None else round(v, 4) for k, v in check.over_declared_share.items()}
        declared = (
            f"gate.accept_schema_change ({check.declared!r}) accepts level changes up to max_level_share, and "
            f"these hold more (share of the training rows): {shown}"
        )
    elif check.declared_change is None:
        declared = (
            f"gate.accept_schema_change ({check.declared!r}) names no change (no change: field), and a declaration "
            "accepts only the change whose fingerprint it names"
        )
    else:
        missing = sorted(set(check.fingerprint or ()) - set(check.declared_change))
        declared = (
            f"gate.accept_schema_change ({check.declared!r}) accepts change {list(check.declared_change)}, which "
            f"lacks {missing}: a declaration accepts only the changed items it names"
        )
    tolerated = describe(check.tolerated) if check.tolerated else ""
    return (
        f"the challenger's input schema differs from the {check.compared_with}'s: {describe(check.counted)} "
        f"(change {list(check.fingerprint or ())}); {declared} (schema_change); to promote it, declare it in the "
        f"template's gate.accept_schema_change: {{reason: '<why>', change: {list(check.fingerprint or ())}, "
        f"columns: {columns}}}; "
        "champion kept" + (f"; tolerated level churn (gate.level_tolerance): {tolerated}" if tolerated else "")
    )
