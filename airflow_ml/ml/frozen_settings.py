"""``to_dict``/``from_dict`` for the frozen settings dataclasses that the factory builds and operators carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar, Self


class FrozenSettings:
    """A mixin for frozen dataclasses of settings: a JSON-serialisable ``to_dict`` and a strict ``from_dict``.

    ``nested`` names the fields that hold another settings object (with its own ``from_dict``).
    """

    #: Fields holding a nested settings object: field name -> its class.
    nested: ClassVar[Mapping[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, as operators take it (mappings and lists are handed on, not copied)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The settings back from :meth:`to_dict`.

        Raises:
            ValueError: naming a key that is no setting, so a setting is never silently dropped.
        """
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; it knows {known}")
        values = dict(data)
        for name, kind in cls.nested.items():
            if isinstance(values.get(name), Mapping):
                values[name] = kind.from_dict(values[name])
        return cls(**values)


def _plain(value: Any) -> Any:
    # Shallow on purpose: the factory calls this for every task of every city at parse time, and the values
    # below a field are plain dicts and lists already (the spec's JSON dump), or settings with their own to_dict.
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
