"""Load YAML safely while remembering the line of every mapping key, for errors that point at a line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

try:  # the C loader is about 7x faster; fall back to pure Python where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]
#: The fastest safe loader this PyYAML build has (no Python objects, no tags beyond YAML's own).
FastSafeLoader = _Loader


class YamlFileError(ValueError):
    """The file is not valid YAML or its top level is not a mapping."""


def load_yaml_with_lines(path: Path) -> tuple[dict[str, Any], dict[Path_, int]]:
    """Parse ``path`` with the safe loader.

    Returns:
        The data, and a map from each key path (e.g. ``("training", "params", "num_leaves")``)
        to its 1-based line in the file.

    Raises:
        YamlFileError: on a syntax error (with its line) or a top level that is not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"byte {exc.start} is not UTF-8; save the file as UTF-8 text") from None
    loader = _Loader(text)  # the C or pure-Python *safe* loader
    try:
        node = loader.get_single_node()
        data: Any = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlFileError(f"invalid YAML at {where}: {problem}; fix the syntax (plain YAML, no tags)") from None
    finally:
        loader.dispose()
    if node is None:
        raise YamlFileError("the file is empty; it must hold a mapping of settings such as 'city: ...'")
    if not isinstance(node, yaml.MappingNode):
        raise YamlFileError(f"line {node.start_mark.line + 1}: the top level must be a mapping of settings")
    lines: dict[Path_, int] = {}
    _collect_lines(node, (), lines)
    return dict(data), lines


def _collect_lines(node: yaml.Node, prefix: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            lines[path] = key_node.start_mark.line + 1
            _collect_lines(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*prefix, index), lines)
