"""Every command README.md, CONTRIBUTING.md and docs/ show is run, verbatim, by a test, by ``make demo`` or by CI.

A command is a line of a fenced ``bash``, ``sh``, ``shell``, ``zsh`` or ``console`` block (in ``console``,
the lines that start with ``$ ``); blocks of any other language (``yaml``, ``text``, ``json``, ``dotenv``...)
show no commands. Each command is registered in ``tests/support/documented.py``:

- in ``RUN_BY``, with what runs it: a test's node id, whose function holds the exact command as a line of a
  string it runs; ``make demo``, whose recipe runs it (``$(BIN)`` is ``.venv/bin``); ``.ci/run``, which
  runs it; or ``make test``, for a command that runs a selection of the test suite (a tier), which the
  recipe's ``.venv/bin/pytest`` runs whole; or ``make check``, for ``make check`` itself and the lines of its
  recipe, which ``make test`` (what CI runs) depends on;
- or in ``NOT_RUN``, with the reason (a Docker engine, a server that runs until stopped). Such a command
  must sit in a block right after a blockquote that says ``Not run by the tests: <why>``, and only such
  commands may. This is the one way out, kept for what cannot run on the CI machine.

The registry is checked both ways: a command the docs no longer show must leave it too. README.md stays
under 8 KB, and every relative link of the docs resolves.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.documented import (
    CI,
    MAKE_CHECK,
    MAKE_DEMO,
    MAKE_TEST,
    NOT_RUN,
    RUN_BY,
    commands_in,
    doc_paths,
    documented_commands,
)

README_LIMIT = 8192


def test_the_docs_show_commands_and_each_is_registered() -> None:
    shown = documented_commands()
    assert len(shown) >= 20, "the extractor finds the docs' commands"
    unregistered = [f"{c.path}:{c.line}: {c.command}" for c in shown if c.command not in {**RUN_BY, **NOT_RUN}]
    assert not unregistered, (
        "commands the docs show that no test, `make demo` or CI runs; run each in a test and register it in "
        "tests/support/documented.py RUN_BY (or show a command a test runs):\n" + "\n".join(unregistered)
    )


def test_every_registered_command_is_still_shown() -> None:
    shown = {c.command for c in documented_commands()}
    stale = sorted((set(RUN_BY) | set(NOT_RUN)) - shown)
    assert not stale, f"registered in tests/support/documented.py but shown nowhere any more: {stale}"
    assert not set(RUN_BY) & set(NOT_RUN), "a command is either run or not"


def test_a_command_that_is_not_run_says_so_where_it_is_shown() -> None:
    wrong = [
        f"{c.path}:{c.line}: {c.command}" for c in documented_commands() if (c.command in NOT_RUN) != c.marked_not_run
    ]
    assert not wrong, (
        "a command of NOT_RUN must sit in a block after '> Not run by the tests: <why>', and a block so marked "
        "may hold only such commands:\n" + "\n".join(wrong)
    )


def _strings_in_function(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name]
    assert functions, f"{path.relative_to(REPO)} has no test function {name}"
    return [n.value for n in ast.walk(functions[0]) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


@pytest.mark.parametrize("command", sorted(c for c, runner in RUN_BY.items() if "::" in runner))
def test_the_registered_test_runs_the_command_verbatim(command: str) -> None:
    file, _, function = RUN_BY[command].partition("::")
    path = REPO / file
    assert path.is_file(), f"{file} (registered for {command!r}) does not exist"
    lines = {line.strip() for text in _strings_in_function(path, function) for line in text.splitlines()}
    assert command in lines, f"{RUN_BY[command]} holds no string with the line {command!r}; run it verbatim"


def _make_recipe(target: str) -> list[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, flags=re.MULTILINE)
    assert match, f"the Makefile has no {target} recipe"
    # `$(call VENV_RUN,airflow-ml demo)` echoes `$ airflow-ml demo` and runs .venv/bin/airflow-ml demo.
    lines = [re.sub(r"^\$\(call VENV_RUN,(.*)\)$", r"$(BIN)/\1", line.strip()) for line in match.group(1).splitlines()]
    return [line.replace("$(BIN)", ".venv/bin") for line in lines]


@pytest.mark.parametrize("command", sorted(c for c, runner in RUN_BY.items() if "::" not in runner))
def test_make_demo_and_ci_run_what_is_registered_to_them(command: str) -> None:
    runner = RUN_BY[command]
    assert runner in (MAKE_DEMO, CI, MAKE_TEST, MAKE_CHECK), f"unknown runner {runner!r} for {command!r}"
    if runner == MAKE_CHECK:
        assert "check" in _make_prerequisites("test"), "make test (what CI runs) runs make check first"
        assert command == MAKE_CHECK or command in _make_recipe("check"), f"make check does not run {command!r}"
    elif runner == MAKE_TEST:
        # The whole suite but its slow cases, which `make test-slow` runs: together they run every documented selection.
        assert _make_recipe("test") == ['.venv/bin/pytest -m "not slow"'], "make test runs the suite but its slow cases"
        assert _make_recipe("test-slow") == [".venv/bin/pytest -m slow"], "make test-slow runs the slow cases"
        _assert_a_selection_of_the_suite(command)
    elif runner == MAKE_DEMO:
        if command == MAKE_DEMO:
            assert _make_recipe("demo"), "make demo is the Makefile's demo target"
        else:
            assert command in _make_recipe("demo"), f"the Makefile's demo recipe does not run {command!r}"
    else:
        script = [line.strip() for line in (REPO / CI).read_text(encoding="utf-8").splitlines()]
        assert command in script, f"{CI} does not run {command!r}"


def _make_prerequisites(target: str) -> list[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{target}:(.*)$", text, flags=re.MULTILINE)
    assert match, f"the Makefile has no {target} target"
    return match.group(1).split()


def _assert_a_selection_of_the_suite(command: str) -> None:
    """``command`` is ``[VAR=value ...] .venv/bin/pytest`` with folders of tests/ and a marker expression only."""
    words = shlex.split(command)
    while words and re.fullmatch(r"AIRFLOW_ML_[A-Z_]+=\S*", words[0]):
        words.pop(0)
    assert words[:1] == [".venv/bin/pytest"], f"{command!r} is not a pytest run"
    markers = {line.split(":")[0].strip() for line in _pytest_markers()}
    args = iter(words[1:])
    for arg in args:
        if arg == "-m":
            names = set(re.findall(r"[a-z_]+", next(args))) - {"and", "or", "not"}
            assert names <= markers, f"{command!r} selects unregistered markers {names - markers}"
        else:
            assert arg.startswith("tests/"), f"{command!r}: {arg} is not a folder of tests/"
            assert (REPO / arg).is_dir(), f"{command!r}: {arg} is not a folder"


def _pytest_markers() -> list[str]:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["pytest"]["ini_options"]["markers"])


def test_the_extractor_reads_command_blocks_only_and_sees_the_marker() -> None:
    text = "\n".join(
        [
            "```bash",
            "# a comment",
            "make demo",
            "```",
            "```yaml",
            "city: porto",
            "```",
            "```console",
            "$ .venv/bin/airflow-ml serving berlin",
            "berlin: ride_duration.berlin v1",
            "```",
            "> Not run by the tests: needs a Docker engine.",
            "",
            "```sh",
            "docker compose up -d",
            "```",
            "```text",
            "docker compose down -v",
            "```",
        ]
    )
    found = [(c.line, c.command, c.marked_not_run) for c in commands_in(text, "x.md")]
    assert found == [
        (3, "make demo", False),
        (9, ".venv/bin/airflow-ml serving berlin", False),
        (15, "docker compose up -d", True),
    ]
    with pytest.raises(ValueError, match=r"x.md:2: a command continues"):
        commands_in("```bash\nmake \\\n  demo\n```", "x.md")


def test_the_readme_stays_short() -> None:
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it under {README_LIMIT} and move detail to docs/"


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def test_every_relative_link_of_the_docs_resolves() -> None:
    broken = []
    for page in doc_paths():
        text = page.read_text(encoding="utf-8")
        anchors_of: dict[Path, set[str]] = {}
        for match in _LINK.finditer(text):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
                continue
            if anchor and path.suffix == ".md":
                anchors = anchors_of.setdefault(path, _anchors(path))
                if anchor not in anchors:
                    broken.append(f"{page.relative_to(REPO)}: {target} (no heading #{anchor})")
    assert not broken, "\n".join(broken)


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(("```", "~~~")):
            fenced = not fenced
        heading = None if fenced else re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower().replace("`", ""))
            anchors.add(text.replace(" ", "-"))
    return anchors
