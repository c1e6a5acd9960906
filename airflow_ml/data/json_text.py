"""The project's JSON records as text: ``json.dumps(payload, indent=1, default=str)``, character for character,
at the speed of json's C encoder.

Python's ``json`` encodes in C only without ``indent``; with it, every value goes through the pure-Python
encoder, about three times slower. The nightly drift review rewrites one record of some 15 kB per city (1,000
cities a night), so that encoder was most of its own time. Here each innermost object or list (one holding no
other) is encoded by the C encoder in one call, its item separator carrying the newline and the indentation of
its depth; only the containers above them (a record's few sections, a list of per-column entries) are walked in
Python. The text is the same, so every reader, and every person opening a record, sees what they saw before.

:func:`with_item` sets one top-level item of such a text (the review's ``fleet_review`` in a city's
``drift.json``) without decoding and encoding the rest.
"""

from __future__ import annotations

import json
import math
from typing import Any

_CONTAINERS = (dict, list, tuple)
_LITERALS = {None: "null", True: "true", False: "false"}
#: The types json writes as they are (no container inside): a container holding only these is innermost.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def dumps_indented(payload: Any) -> str:
    """``payload`` as ``json.dumps(payload, indent=1, default=str)`` writes it (the same text), faster."""
    try:
        return _value(payload, 0)
    except RecursionError as error:  # json's own error for a payload that holds itself
        raise ValueError("Circular reference detected") from error


def _value(value: Any, depth: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        if _innermost(value.values()):
            return _wrapped(value, depth)
        pad = "\n" + " " * (depth + 1)
        items = (f"{_encoder(0).encode(_key(key))}: {_value(item, depth + 1)}" for key, item in value.items())
        return "{" + pad + ("," + pad).join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        if _innermost(value):
            return _wrapped(value, depth)
        pad = "\n" + " " * (depth + 1)
        return "[" + pad + ("," + pad).join(_value(item, depth + 1) for item in value) + "\n" + " " * depth + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    """A scalar (or an object ``default`` turns into a string); the common ones without the encoder's set-up."""
    kind = type(value)
    if kind is str:
        return _encoder(0).encode(value)
    if value is None or kind is bool:
        return _LITERALS[value]
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _encoder(0).encode(value)


def _innermost(values: Any) -> bool:
    """Whether ``values`` hold no object or list (checked by exact type first: the common case, in C)."""
    values = list(values)
    return _SCALARS.issuperset(map(type, values)) or not any(isinstance(v, _CONTAINERS) for v in values)


def _wrapped(container: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> str:
    """An innermost container in one C call: its items one a line, as ``indent=1`` lays them out."""
    text = _encoder(depth + 1).encode(container)  # "{" item ",\n<pad>" item ... "}"
    return text[0] + "\n" + " " * (depth + 1) + text[1:-1] + "\n" + " " * depth + text[-1]


def _key(key: Any) -> str:
    """A key as json turns it into a string (``true``, ``1.5``, ``null``); TypeError as json raises it."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool | int | float) or key is None:
        return _encoder(0).encode(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")


_ENCODERS: dict[int, json.JSONEncoder] = {}


def _encoder(depth: int) -> json.JSONEncoder:
    """The C encoder whose item separator starts a new line indented for ``depth``."""
    encoder = _ENCODERS.get(depth)
    if encoder is None:
        encoder = _ENCODERS[depth] = json.JSONEncoder(default=str, separators=(",\n" + " " * depth, ": "))
    return encoder


def with_item(text: str, key: str, value: Any) -> str | None:
    """``text``, an object as :func:`dumps_indented` writes it, with ``key`` set to ``value``; None if not so laid out.

    The same text as ``dumps_indented({**json.loads(text), key: value})`` (a key already there keeps its place,
    a new one comes last) without decoding and encoding the rest: a record's other items stay as they are. It
    relies on the layout alone: a JSON string never holds a raw newline, so a line that starts with one space and
    a quote starts a top-level item. Any other layout (compact, another indent, a key twice) gives None: parse it.
    """
    if not (text.startswith('{\n "') and text.endswith("\n}")):
        return None
    marker = f"\n {_encoder(0).encode(key)}: "
    item = _value(value, 1)
    at = text.find(marker)
    if at < 0:
        return f"{text[:-2]},{marker}{item}\n}}"
    start = at + len(marker)
    if text.find(marker, start) >= 0:
        return None
    after = text.find('\n "', start)  # the next top-level item (after its comma), or the object's end
    end = len(text) - 2 if after < 0 else after - 1
    return text[:start] + item + text[end:]
