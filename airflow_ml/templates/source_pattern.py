"""The checks of a location pattern from YAML (``{data_root}/raw/trips/{city}``): bare placeholders, no ``..``."""

from __future__ import annotations

import re
import string

from airflow_ml.exceptions import show_value


def check_location_pattern(pattern: str, *, field: str, placeholders: tuple[str, ...], required: str | None) -> None:
    """Refuse a pattern that could lead elsewhere than its author meant.

    Args:
        pattern: The YAML value.
        field: Its name, for the message (``source``, ``scoring.output``).
        placeholders: The placeholders it may hold, e.g. ``("data_root", "city")``.
        required: A placeholder it must hold (``city``: each city reads its own data), or None.

    Raises:
        ValueError: naming the field, the value and the fix.
    """
    allowed = " and ".join(f"{{{name}}}" for name in placeholders)
    parsed = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(pattern)]
    decorated = [name for name, spec, conversion in parsed if name is not None and (spec or conversion)]
    if decorated:
        raise ValueError(
            f"{field} {show_value(pattern)} gives {{{show_value(decorated[0], quote=False)}}} a conversion "
            f"('!') or a format spec (':'); write the placeholders bare: {allowed}"
        )
    if ".." in re.split(r"[/\\]", pattern):
        raise ValueError(f"{field} {pattern!r} has a '..' segment, which leads out of the data root; drop it")
    fields = {name for name, _, _ in parsed if name is not None}
    if required is not None and required not in fields:
        raise ValueError(
            f"{field} {show_value(pattern)} must contain '{{{required}}}' so that each city reads its own data"
        )
    if fields - set(placeholders):
        unknown = sorted(fields - set(placeholders))
        raise ValueError(
            f"{field} {show_value(pattern)} has unknown placeholder(s) {show_value(unknown)}; use {allowed}"
        )
