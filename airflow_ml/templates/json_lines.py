"""Load a JSON suite with the same refusals as YAML: no key twice in one object, no Jinja in any string.

``json`` keeps the last of two equal keys silently and knows no lines; the C decoder finds whether a file has
a problem at all, and only then a second pass over the text finds each problem's line, column and field.
As in YAML, nesting beyond ``MAX_DEPTH`` levels and a whole number longer than ``MAX_INT_CHARS`` characters
are refused at their line, before anything is built.
"""

from __future__ import annotations

import json
import re
from typing import Any

from airflow_ml.exceptions import Problem
from airflow_ml.templates.yaml_lines import (
    JINJA,
    MAX_DEPTH,
    MAX_INT_CHARS,
    Path_,
    format_path,
    huge_number_problem,
    jinja_problem,
)

_SPACE = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[{\]}]")


class _HugeNumber(ValueError):
    def __init__(self, digits: str) -> None:
        super().__init__(digits)
        self.digits = digits


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_INT_CHARS:
        raise _HugeNumber(digits)
    return int(digits)


def _skip(text: str, pos: int) -> int:
    """The position of the first character at or after ``pos`` that is not JSON white space."""
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def load_json_checked(text: str) -> tuple[Any, list[Problem]]:
    """Parse ``text``.

    Returns:
        The data (None when the syntax is invalid), and every problem with its line, column and field:
        invalid JSON, a key set twice in one object, Jinja in a key or value.
    """
    twice = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal twice
        mapping = dict(items)
        twice = twice or len(mapping) != len(items)
        return mapping

    if text.count("[") + text.count("{") > MAX_DEPTH:  # only then can it nest that deep
        deep = _too_deep(text)
        if deep is not None:
            return None, [deep]
    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        return None, [Problem(f"invalid JSON: {exc.msg}; fix the syntax", line=exc.lineno, col=exc.colno)]
    except _HugeNumber:
        return None, _Scan(text).problems()  # the scan places each such number at its field and line
    except RecursionError:
        return None, [Problem("the file is nested too deeply; a suite needs a few levels")]
    if not twice and not _holds_jinja(data):
        return data, []
    return data, _Scan(text).problems()


def _too_deep(text: str) -> Problem | None:
    """The problem of a text whose brackets (outside strings) nest deeper than MAX_DEPTH, at its line."""
    bare = _STRING.sub(lambda match: " " * len(match.group()), text)  # brackets in strings do not count
    depth = 0
    for match in _BRACKET.finditer(bare):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            pos = match.start()
            message = (
                f"nested more than {MAX_DEPTH} levels deep; a suite needs a few levels (the list of expectations, "
                "each one's arguments): write the value out flat"
            )
            return Problem(message, line=text.count("\n", 0, pos) + 1, col=pos - text.rfind("\n", 0, pos))
    return None


def _holds_jinja(value: Any) -> bool:
    if isinstance(value, str):
        return JINJA.search(value) is not None
    if isinstance(value, dict):
        return any(JINJA.search(k) or _holds_jinja(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_jinja(v) for v in value)
    return False


class _Scan:
    """A second pass over valid JSON text that knows where each key and string stands."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.found: list[Problem] = []
        self.decoder = json.JSONDecoder(parse_int=_bounded_int)

    def problems(self) -> list[Problem]:
        self.value(0, ())
        return self.found

    def value(self, pos: int, path: Path_) -> int:
        """Scan the value at ``pos`` (after white space); return the position after it."""
        text = self.text
        pos = _skip(text, pos)
        opening = text[pos]
        if opening == '"':
            string, end = self.decoder.raw_decode(text, pos)
            if JINJA.search(string):
                self.problem(pos, jinja_problem(format_path(path), string))
            return end
        if opening not in "{[":
            try:
                return self.decoder.raw_decode(text, pos)[1]
            except _HugeNumber as exc:
                self.problem(pos, huge_number_problem(format_path(path), exc.digits))
                return pos + len(exc.digits)
        closing = "}" if opening == "{" else "]"
        pos = _skip(text, pos + 1)
        if text[pos] == closing:
            return pos + 1
        seen: dict[str, int] = {}
        index = 0
        while True:
            if opening == "{":
                pos = _skip(text, pos)
                key, end = self.decoder.raw_decode(text, pos)
                child: Path_ = (*path, key)
                if JINJA.search(key):
                    self.problem(pos, jinja_problem(format_path(path), key, key=True))
                if key in seen:
                    first, line = self.line(seen[key]), self.line(pos)
                    message = f"set twice, on lines {first} and {line}; the second would silently replace the first"
                    self.problem(pos, f"{format_path(child)}: {message}: keep one")
                seen.setdefault(key, pos)
                pos = _skip(text, end) + 1
            else:
                child = (*path, index)
                index += 1
            pos = _skip(text, self.value(pos, child))
            if text[pos] == closing:
                return pos + 1
            pos += 1  # the ','

    def line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def problem(self, pos: int, message: str) -> None:
        col = pos - self.text.rfind("\n", 0, pos)
        self.found.append(Problem(message, line=self.line(pos), col=col))
