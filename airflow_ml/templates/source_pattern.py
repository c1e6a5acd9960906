"""The checks of a location pattern from YAML (``{data_root}/raw/trips/{city}``): bare placeholders, no ``..``.

A pattern the system writes to (``scoring.output``) or reads another party's data from
(``monitoring.labels.source``) is also *confined*: it starts at ``{data_root}`` or is an ``s3://`` URI, so
that a YAML file cannot make the system write predictions to ``/etc`` or read labels from another client's
folder on the machine.
"""

from __future__ import annotations

import functools
import re
import string

from airflow_ml.exceptions import show_value

#: The object-store URIs a confined pattern may be instead of a path under ``{data_root}``.
CONFINED_SCHEMES = ("s3://",)
_DATA_ROOT = "{data_root}"


# Cached: every city of a template repeats its patterns, and a parse of 10,000 cities checks each one several
# times. A pattern that fails raises each time (exceptions are not cached), so its message is never stale.
@functools.lru_cache(maxsize=4096)
def check_location_pattern(
    pattern: str, *, field: str, placeholders: tuple[str, ...], required: str | None, confined: bool = False
) -> None:
    """Refuse a pattern that could lead elsewhere than its author meant.

    Args:
        pattern: The YAML value.
        field: Its name, for the message (``source``, ``scoring.output``).
        placeholders: The placeholders it may hold, e.g. ``("data_root", "city")``.
        required: A placeholder it must hold (``city``: each city reads its own data), or None.
        confined: The pattern must start at ``{data_root}`` (the placeholder, then ``/`` or nothing) or be an
            ``s3://`` URI with a bucket.

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
    if confined and not _confined(pattern):
        raise ValueError(
            f"{field} {show_value(pattern)} is neither under the data root nor an s3:// URI, so it could lead "
            "anywhere on the machine; write it from {data_root} down (e.g. '{data_root}/predictions'), or as "
            "'s3://<bucket>/<prefix>'"
        )
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


def _confined(pattern: str) -> bool:
    """Whether ``pattern`` starts at ``{data_root}`` (then ``/`` or its end) or is an ``s3://`` URI with a bucket."""
    if pattern.startswith(_DATA_ROOT):
        rest = pattern[len(_DATA_ROOT) :]
        return rest == "" or rest.startswith("/")
    for scheme in CONFINED_SCHEMES:
        bucket = pattern[len(scheme) :].split("/", 1)[0]
        if pattern.startswith(scheme) and bucket and "{" not in bucket:
            return True
    return False
