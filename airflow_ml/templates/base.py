"""The base of every config model, and the id patterns the models share."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeGuard

from pydantic import BaseModel, ConfigDict, Field

CITY_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
#: The longest ``display_name``: it heads a DAG in Airflow's DAG list and a row of the fleet view.
DISPLAY_NAME_MAX_LENGTH = 80
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def is_name(value: Any) -> TypeGuard[str]:
    """Whether ``value`` is a template or group name (``NAME_PATTERN``): a name, never a path."""
    return isinstance(value, str) and re.fullmatch(NAME_PATTERN, value) is not None


def check_display_name(value: str) -> None:
    """Refuse a display name that is not one readable line: a control character, a line break, outer spaces.

    Raises:
        ValueError: naming the character at fault and the fix.
    """
    bad = _NOT_ONE_LINE.search(value)
    if bad:
        raise ValueError(
            f"display_name holds the control character {bad.group()!r} at position {bad.start()}; "
            "write the name on one line, without tabs or control characters"
        )
    if value != value.strip():
        raise ValueError("display_name starts or ends with a space; remove the space")


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, types are strict and objects are immutable.

    Strict types: ``true`` is not a number and ``'400'`` is not 400, each is an error naming the field (a
    whole number is still a valid float). Every number has a lower and an upper bound.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def slugify(value: str) -> str:
    """Suggest a valid city id for a free-form name (``"São Paulo"`` becomes ``"sao_paulo"``)."""
    import unicodedata

    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_value.lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = f"city_{slug}".rstrip("_")
    return slug[:63]
