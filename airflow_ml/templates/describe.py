"""Turn pydantic's validation errors into problems that name the file, line, field and value, and the fix."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import get_args

from pydantic import BaseModel, ValidationError

from airflow_ml.exceptions import Problem, show_value
from airflow_ml.templates.base import CITY_ID_PATTERN, slugify
from airflow_ml.templates.yaml_lines import Path_

#: Where each setting of a merged configuration was set last: its file, line and column.
Origin = dict[Path_, tuple[Path, int, int]]
_CITY_OWN_KEYS = {"city", "template", "display_name", "group"}
#: Strict types: what to write instead of a value of the wrong type.
_TYPE_HINTS = {
    "int_type": "write a whole number without quotes, e.g. 400",
    "float_type": "write a number without quotes, e.g. 0.05",
    "bool_type": "write true or false without quotes",
    "string_type": "write text (quote it if YAML reads it as a number, a date or true/false)",
}
#: Keys that were replaced, with what replaced them (an unknown key's error says so instead of guessing).
_REPLACED_KEYS = {
    "ignore_removed": (
        "it was replaced by removed_level_max_share (the share of the champion's training snapshot the removed "
        "levels may hold, default 0.001; 1 tolerates every removed level, as ignore_removed: true did)"
    ),
}


def describe(exc: ValidationError, model: type[BaseModel], origin: Origin) -> list[Problem]:
    """One problem per error of ``exc``, placed at the line of the file that set the setting."""
    known = sorted(_field_names(model))
    problems = []
    for error in exc.errors(include_url=False):
        loc: Path_ = tuple(error["loc"])
        field = show_value(".".join(str(p) for p in loc) or "(top level)", quote=False)
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            # The keys valid where the unknown one stands come first: min_rmse under min_quality is max_rmse.
            key = str(loc[-1])
            hint = did_you_mean(key, _keys_at(model, loc[:-1])) or did_you_mean(key, known) if len(key) < 200 else ""
            hint = _REPLACED_KEYS.get(key) or hint or "remove it or check the spelling"
            message = f"{field}: unknown key {show_value(key)}; {hint}"
        elif error["type"] == "missing":
            message = f"{field}: required setting is missing; add it to the city file or its template"
        elif error["type"] == "string_pattern_mismatch" and loc == ("city",):
            message = (
                f"city: {show_value(value)} is not a valid city id ({CITY_ID_PATTERN}); use "
                f"{show_value(slugify(str(value)[:200]))} and put the readable name in display_name"
            )
        else:
            text = error["msg"].removeprefix("Value error, ")
            shown = show_value(value)
            shown = "" if isinstance(value, Mapping) or shown in text else f" (got {shown})"
            fix = _TYPE_HINTS.get(error["type"])
            message = f"{field}: {text}{shown}" + (f"; {fix}" if fix else "")
            loc = _named_within(text, loc)
        problems.append(_placed(message, loc, origin))
    return problems


def _named_within(text: str, loc: Path_) -> Path_:
    """The setting a section's own check names first (``scoring.key_columns ...`` under ``scoring``), or ``loc``.

    A check that needs two settings of a section runs on the whole section; its message starts with the setting at
    fault, so that the problem points at that setting's line rather than the section's.
    """
    match = _DOTTED.match(text)
    if match is None:
        return loc
    named = tuple(match.group(1).split("."))
    return named if len(named) > len(loc) and named[: len(loc)] == tuple(map(str, loc)) else loc


#: A dotted setting at the start of a message, e.g. ``scoring.key_columns``.
_DOTTED = re.compile(r"([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)\b")


def _placed(message: str, loc: Path_, origin: Mapping[Path_, tuple[Path, int, int]]) -> Problem:
    for end in range(len(loc), -1, -1):
        found = origin.get(loc[:end])
        if found is not None:
            path, line, col = found
            return Problem(message, line=line, col=col, file=str(path))
    return Problem(message)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the closest of ``candidates``, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _keys_at(model: type[BaseModel], loc: Path_) -> set[str]:
    """The keys of the model found at ``loc`` (list indexes skipped), or none when ``loc`` leads to no model."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        current = next(
            (c for c in (annotation, *get_args(annotation)) if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return set(current.model_fields) if current is not None else set()


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        # Look inside ``Model | None`` and ``list[Model]`` too, so their keys get a "did you mean".
        for candidate in (field.annotation, *get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names |= _field_names(candidate)
    return names | _CITY_OWN_KEYS
