"""Load YAML safely, refuse what these files may never hold, and remember where every key is.

Every YAML file of the project (defaults, templates, groups, cities, suites) is read here, by lint, by the
DAG files and by the tasks alike. Besides YAML's own syntax, a file is refused, naming line and field, when
it holds:

- an anchor or an alias (``&a``, ``*a``): a few hundred bytes of nested aliases expand to gigabytes. They
  are found in the parser's event stream, before any node is composed, so such a file costs microseconds;
- a merge key (``<<``);
- a key set twice in one mapping (the last one would silently win);
- Jinja (``{{``, ``{%`` or ``{#``) in any string, key or value: values from YAML are data, never templates;
- nesting deeper than :data:`MAX_DEPTH` levels. libyaml composes nodes recursively in C, and a 60 KB file of
  brackets crashes the process; every collection needs an indicator character of its own, so a text with
  more than ``_SCAN_ABOVE`` of them (no city file, few templates) has its parser events counted before
  anything is composed. Any other file cannot nest deep enough to hurt the composer, and the node walk
  refuses it past the bound;
- a whole number longer than :data:`MAX_INT_CHARS` characters (Python builds none over 4,300 digits, and no
  setting takes one near this length), refused without printing it;
- a value YAML cannot build (``2026-02-30`` reads as a date that does not exist), at its line.

Before any of that, a path that is not a regular file (links followed: a FIFO, whose open waits for a writer
forever, a link to ``/dev/zero``, which never ends) is not opened, and a file over :data:`MAX_YAML_BYTES` is not
read whole (:mod:`airflow_ml.templates.bounded_read`): one such file in ``cities/`` would otherwise hang or
exhaust every DAG file that reads the fleet.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from airflow_ml.exceptions import Problem, show_value
from airflow_ml.templates.bounded_read import MAX_YAML_BYTES, UnreadableFile, read_bounded

try:  # the C loader is about 7x faster; fall back to pure Python where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]
#: The fastest safe loader this PyYAML build has (no Python objects, no tags beyond YAML's own).
FastSafeLoader = _Loader

#: An anchor or alias indicator followed by a name character; YAML (libyaml and PyYAML alike) needs one,
#: so a text without a match holds no anchor or alias and skips the event scan.
_MAYBE_ANCHOR = re.compile(r"[&*][0-9A-Za-z_-]")
#: The openings of a Jinja expression, statement or comment.
JINJA = re.compile(r"\{[{%#]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"
_STR_TAG = "tag:yaml.org,2002:str"
#: The scalar tags that the node walk builds itself, each with PyYAML's safe constructor of the tag (None: the
#: text as it is). A file with any other tag (a date, which may not exist: ``2026-02-30``; ``!!binary``...) is
#: built by PyYAML's constructor, as is one with a value that does not build.
_PLAIN_SCALARS: dict[str, Callable[[yaml.constructor.SafeConstructor, yaml.ScalarNode], Any] | None] = {
    _STR_TAG: None,
    _INT_TAG: yaml.SafeLoader.construct_yaml_int,
    "tag:yaml.org,2002:float": yaml.SafeLoader.construct_yaml_float,
    "tag:yaml.org,2002:bool": yaml.SafeLoader.construct_yaml_bool,
    "tag:yaml.org,2002:null": yaml.SafeLoader.construct_yaml_null,
}
_MAP_TAG = "tag:yaml.org,2002:map"
#: Builds the scalars of :data:`_PLAIN_SCALARS`: those constructors keep no state.
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SEQ_TAG = "tag:yaml.org,2002:seq"
_KINDS = {_INT_TAG: "a whole number", "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:timestamp": "a date"}
#: How deep a file may nest: the settings need a few levels (a section, a list, an item's arguments).
MAX_DEPTH = 100
#: The longest whole number a file may hold, in characters: no setting takes one beyond 2**63 (19 digits).
MAX_INT_CHARS = 32
#: Every collection is opened by an indicator of its own: '[', '{', a block entry '-', a key's ':' or '?'.
_NESTING_INDICATORS = "[{-:?"
#: A text with at most this many indicators nests at most as deep: libyaml composes ten times deeper safely.
_SCAN_ABOVE = 1000
_SHARE = "write the values out, or put what several cities share in their template or a group file"
_NO_ANCHORS = f"anchors and aliases are not allowed (nested aliases expand a small file to gigabytes); {_SHARE}"


class YamlFileError(ValueError):
    """The file is not valid YAML, holds what these files may not, or its top level is not a mapping.

    Args:
        problems: Each problem with its line and column where known.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def format_path(path: Path_) -> str:
    """A key path as a field name: ``("gate", "slices", 0, "column")`` is ``gate.slices[0].column``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"


def jinja_problem(field: str, value: str, *, key: bool = False) -> str:
    """The message for a string that holds Jinja."""
    shown = value if len(value) <= 80 else value[:77] + "..."
    what = f"the key {shown!r}" if key else repr(shown)
    return (
        f"{field}: {what} holds Jinja ('{{{{', '{{%' or '{{#'), which these files may never contain: their values "
        "are data and are never rendered as templates; remove it (dataset.source takes only {data_root} and {city})"
    )


def huge_number_problem(field: str, digits: str) -> str:
    """The message for a whole number too long to be any setting's, without printing it whole."""
    return (
        f"{field}: a whole number of {len(digits)} characters ({digits[:12]}...), longer than any value these "
        f"files take (at most {MAX_INT_CHARS} characters); write the number meant"
    )


def too_deep_problem(path: Path_) -> str:
    """The message for a collection nested past MAX_DEPTH at ``path`` (the path cut: it is long)."""
    return (
        f"{show_value(format_path(path), quote=False)}: nested more than {MAX_DEPTH} levels deep; a setting needs a "
        "few levels (a section, a list, an item's arguments): write the value out flat"
    )


def load_yaml_with_lines(path: Path, *, max_bytes: int = MAX_YAML_BYTES) -> tuple[dict[str, Any], dict[Path_, int]]:
    """Parse ``path`` with the safe loader and the checks above.

    Returns:
        The data, and a map from each key path (e.g. ``("training", "params", "num_leaves")``)
        to its 1-based line in the file.

    Raises:
        YamlFileError: naming the line of each problem (syntax, anchors, merge keys, duplicate keys, Jinja),
            or a top level that is not a mapping.
    """
    data, lines, _ = load_yaml_with_positions(path, max_bytes=max_bytes)
    return data, lines


def load_yaml_with_positions(
    path: Path, *, max_bytes: int = MAX_YAML_BYTES
) -> tuple[dict[str, Any], dict[Path_, int], dict[Path_, int]]:
    """As :func:`load_yaml_with_lines`, with a third map: each key path's 1-based column."""
    try:
        # As read_text did: universal newlines, so "\r\n" and "\r" end a line as "\n" does.
        text = read_bounded(path, max_bytes).decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnreadableFile as exc:
        raise YamlFileError(exc.problems) from None
    except UnicodeDecodeError as exc:
        raise YamlFileError([Problem(f"byte {exc.start} is not UTF-8; save the file as UTF-8 text")]) from None
    anchors = _MAYBE_ANCHOR.search(text) is not None
    if anchors or sum(map(text.count, _NESTING_INDICATORS)) > _SCAN_ABOVE:
        _scan_events(text)  # before anything is composed: anchors, and how deep the file nests
    loader = _Loader(text)  # the C or pure-Python *safe* loader
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlFileError([Problem("the file is empty; it must hold a mapping of settings such as 'city: ...'")])
        if not isinstance(node, yaml.MappingNode):
            line = node.start_mark.line + 1
            raise YamlFileError([Problem("the top level must be a mapping of settings", line=line)])
        walk = _Walk()
        built = walk.node(node, ())
        if walk.problems:
            raise YamlFileError(walk.problems)
        if walk.plain:  # the walk built the data as PyYAML's constructor would: no second pass over the nodes
            data: dict[str, Any] = built
        else:
            try:
                data = loader.construct_document(node)
            except (ValueError, TypeError, OverflowError) as exc:
                raise YamlFileError([_unbuildable(node, exc)]) from None
    except yaml.YAMLError as exc:
        raise YamlFileError([_syntax_problem(exc)]) from None
    except RecursionError:
        raise YamlFileError([Problem("the file is nested too deeply; these files need a few levels")]) from None
    finally:
        loader.dispose()
    return dict(data), walk.lines, walk.cols


def _syntax_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    message = f"invalid YAML: {problem}; fix the syntax (plain YAML, no tags)"
    if mark is None:
        return Problem(message)
    return Problem(message, line=mark.line + 1, col=mark.column + 1)


def _unbuildable(root: yaml.Node, exc: Exception) -> Problem:
    """The problem of the first scalar YAML cannot build (rare: found by building each scalar alone)."""
    constructor = yaml.constructor.SafeConstructor()
    stack: list[tuple[yaml.Node, Path_]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):
                key = (*path, str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?")
                stack += [(value_node, key), (key_node, key)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, index)) for index, item in reversed(list(enumerate(node.value)))]
        else:
            try:
                constructor.construct_object(node, deep=True)
            except (ValueError, TypeError, OverflowError, yaml.YAMLError) as found:
                kind = _KINDS.get(node.tag, "a value")
                message = (
                    f"{format_path(path)}: {show_value(node.value)} reads as {kind} that cannot be built ({found}); "
                    "correct it, or quote it to keep it as text"
                )
                return Problem(message, line=node.start_mark.line + 1, col=node.start_mark.column + 1)
    what = show_value(str(exc))
    return Problem(f"the file's values cannot be built ({type(exc).__name__}: {what}); correct the value it names")


def _scan_events(text: str) -> None:
    """Raise for the anchors and aliases of ``text`` (one problem per line) and for nesting beyond MAX_DEPTH.

    Only the parser's events are read (libyaml parses without recursion): nothing is composed or built.
    """
    loader = _Loader(text)
    problems: dict[int, Problem] = {}
    stack: list[list[Any]] = []  # per open collection: [path, is_mapping, expecting_key, key, index]
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
                _advance(stack, None)
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            path = _event_path(stack)
            name = getattr(event, "anchor", None)
            line, col = (event.start_mark.line + 1, event.start_mark.column + 1) if event.start_mark else (1, 1)
            if name is not None and line not in problems:
                what = f"alias '*{name}'" if isinstance(event, yaml.AliasEvent) else f"anchor '&{name}'"
                problems[line] = Problem(f"{format_path(path)}: {what}: {_NO_ANCHORS}", line=line, col=col)
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if len(stack) >= MAX_DEPTH:
                    problems.setdefault(line, Problem(too_deep_problem(path), line=line, col=col))
                    break
                stack.append([path, isinstance(event, yaml.MappingStartEvent), True, None, 0])
            else:
                _advance(stack, event.value if isinstance(event, yaml.ScalarEvent) else None)
    except yaml.YAMLError as exc:
        raise YamlFileError([*problems.values(), _syntax_problem(exc)]) from None
    finally:
        loader.dispose()
    if problems:
        raise YamlFileError(list(problems.values()))


def _event_path(stack: list[list[Any]]) -> Path_:
    if not stack:
        return ()
    path, is_mapping, expecting_key, key, index = stack[-1]
    if is_mapping:
        return path if expecting_key else (*path, key)
    return (*path, index)


def _advance(stack: list[list[Any]], scalar: str | None) -> None:
    """A node ended: the mapping above now expects a key or a value, the sequence above its next item."""
    if not stack:
        return
    frame = stack[-1]
    if frame[1]:
        if frame[2]:
            frame[3] = scalar if scalar is not None else "?"
        frame[2] = not frame[2]
    else:
        frame[4] += 1


class _Walk:
    """One pass over the composed nodes (no alias left): positions of keys, duplicates, merge keys, Jinja.

    It also builds the data, as PyYAML's safe constructor would, while every node is a mapping, a list or a
    scalar of :data:`_PLAIN_SCALARS` that builds: ``plain`` then stays true. Anything else (another tag, a
    key that is not a scalar, a value that does not build) clears it, and the caller builds the document with
    PyYAML's constructor instead, so that such a file gives the very data or error it always gave.
    """

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}
        self.cols: dict[Path_, int] = {}
        self.problems: list[Problem] = []
        self.too_deep = False
        self.plain = True

    def node(self, node: yaml.Node, path: Path_) -> Any:
        """Check ``node`` (at key path ``path``) and what it holds; its value while :attr:`plain` holds."""
        if path not in self.lines:  # a mapping's value: its key set it already
            mark = node.start_mark
            self.lines[path] = mark.line + 1
            self.cols[path] = mark.column + 1
        if isinstance(node, yaml.ScalarNode):
            value = node.value
            if "{" in value and JINJA.search(value):  # the cheap test first: most values hold no brace
                self._problem(jinja_problem(format_path(path), value), node)
            elif len(value) > MAX_INT_CHARS and node.tag == _INT_TAG:
                # Never built: PyYAML builds a long base-60 number ('1:59:59:...') in quadratic time.
                self._problem(huge_number_problem(format_path(path), value), node)
                self.plain = False
                return None
            return self._scalar(node)
        if len(path) >= MAX_DEPTH:  # a collection past the bound: said once, not walked into
            if not self.too_deep:
                self.too_deep = True
                self._problem(too_deep_problem(path), node)
            self.plain = False
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                self.plain = False
            return [self.node(item, (*path, index)) for index, item in enumerate(node.value)]
        return None  # pragma: no cover - a composed node is a scalar, a mapping or a sequence

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        if node.tag != _MAP_TAG:
            self.plain = False
        built: dict[Any, Any] = {}
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                self._problem(f"{format_path(path)}: merge keys ('<<') are not allowed; {_SHARE}", key_node)
            elif "{" in key and isinstance(key_node, yaml.ScalarNode) and JINJA.search(key):
                self._problem(jinja_problem(format_path(path), key, key=True), key_node)
            elif len(key) > MAX_INT_CHARS and key_node.tag == _INT_TAG:  # a key is refused unbuilt as a value is
                self._problem(huge_number_problem(format_path(path), key), key_node)
                self.plain = False
            first = seen.get((key_node.tag, key))
            if first is None:
                seen[(key_node.tag, key)] = line
            else:  # its value is still checked below, for what else it may hold
                self._problem(
                    f"{format_path(child)}: set twice, on lines {first} and {line}; the second would silently "
                    "replace the first: keep one",
                    key_node,
                )
            self.lines[child] = line
            self.cols[child] = key_node.start_mark.column + 1
            built_key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key_node, yaml.ScalarNode):
                self.plain = False
            built_value = self.node(value_node, child)
            if self.plain and first is None and built_key in built:  # two spellings of one key: 1 and true, ~ and null
                self._problem(
                    f"{format_path(child)}: the same key as an earlier one written another way ({built_key!r}); "
                    "the second would silently replace the first: keep one",
                    key_node,
                )
            if self.plain:
                built[built_key] = built_value
        return built

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if not self.plain:
            return None
        if node.tag not in _PLAIN_SCALARS or (node.tag == _INT_TAG and len(node.value) > MAX_INT_CHARS):
            self.plain = False
            return None
        construct = _PLAIN_SCALARS[node.tag]
        if construct is None:
            return node.value
        try:
            return construct(_CONSTRUCTOR, node)
        except Exception:  # noqa: BLE001 - PyYAML's constructor then builds the file and reports it as before
            self.plain = False
            return None

    def _problem(self, message: str, node: yaml.Node) -> None:
        self.problems.append(Problem(message, line=node.start_mark.line + 1, col=node.start_mark.column + 1))
