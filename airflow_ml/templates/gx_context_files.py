"""Read an existing file-based GX Data Context as data: a checkpoint's or a suite's expectations, nothing else.

Why not ``gx.get_context(mode="file", project_root_dir=...)``: in GX 1.x, building a file context appends
its ``plugins/`` folder to ``sys.path`` (``AbstractDataContext.__init__``), substitutes ``${VARIABLES}``
from the environment and from ``uncommitted/config_variables.yml``, and resolves ``secret|`` values from
AWS, GCP or Azure secret stores; it instantiates every store and data docs site named in
``great_expectations.yml`` by ``class_name`` and ``module_name`` (``instantiate_class_from_config``
imports the module), so a hostile context runs its own Python as soon as it is opened. And running its
checkpoint (``Checkpoint.run``) opens the checkpoint's datasource and runs its actions: e-mail, Slack,
Teams or webhook notifications, data docs builds, validation result stores, custom actions from plugins.

So the context's files are read here as JSON, with the checks every suite file gets (no key twice, no
Jinja), and only what validation needs is kept: the suite(s), and for a checkpoint its validation
definitions' suites. The expectations then run on the run's snapshot as a runtime pandas batch, in the
same ephemeral GX context as the project's suite files (``airflow_ml.validation.runner``), so that:

- a checkpoint's actions never run; they are named in the verdict's notes;
- its datasource and batch definition are not read: the snapshot is the data (a checkpoint whose
  definitions validate more than one data asset is refused: name one suite instead);
- stores must be the file backend (``TupleFilesystemStoreBackend``) with folders inside the context; any
  other backend or a ``module_name`` is refused, never loaded;
- a custom expectation (Python in ``plugins/``) is unknown to GX here, and the suite is refused as any
  suite naming an unknown type is, before any data is judged;
- arguments that would run code or reach out (a ``row_condition`` beyond plain comparisons, a remote
  ``$ref`` in a ``json_schema``, a ``$PARAMETER``) are refused as in any suite
  (``airflow_ml.validation.unsafe_arguments``);
- every file read resolves inside the project folder (no ``..``, no symlink out of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_ml.exceptions import ConfigError, show_value
from airflow_ml.templates.json_lines import load_json_checked
from airflow_ml.templates.suite_files import parse_expectations
from airflow_ml.templates.yaml_lines import YamlFileError, load_yaml_with_lines

CONTEXT_FILE = "great_expectations.yml"
#: The store kinds read, their ``*_store_name`` key in ``great_expectations.yml`` and GX's default folder.
_STORES = {
    "ExpectationsStore": ("expectations_store_name", "expectations/"),
    "CheckpointStore": ("checkpoint_store_name", "checkpoints/"),
    "ValidationDefinitionStore": (None, "validation_definitions/"),
}
_FILE_BACKEND = "TupleFilesystemStoreBackend"


@dataclass(frozen=True)
class GxChecks:
    """What a GX context contributes to a validation.

    Attributes:
        suite: A suite dict as ``load_suite`` returns (GX form, ``meta.severity`` and ``meta.source`` set).
        where: The context folder and what was named in it, for the verdict's ``suite_file``.
        notes: What was left out on purpose (the checkpoint's actions, its datasource), for the verdict.
    """

    suite: dict[str, Any]
    where: str
    notes: list[str] = field(default_factory=list)


def load_gx_checks(project_root: str | Path, path: str, *, checkpoint: str | None, suite: str | None) -> GxChecks:
    """The expectations of ``checkpoint`` or ``suite`` in the GX context at ``project_root/path``.

    Raises:
        ConfigError: naming the YAML field (``gx_context.path``, ``.checkpoint``, ``.suite``) or the
            context's file at fault, and the fix.
    """
    root = Path(project_root).resolve()
    if root == Path(root.anchor):
        raise ConfigError(
            str(root),
            [
                f"the project folder that gx_context.path ({show_value(path)}) is confined to is {root}, the "
                "filesystem's root; keep the expectations folder in a project folder (e.g. /opt/project/expectations)"
            ],
        )
    context = _context_folder(root, path)
    stores = _Stores(context, root, _context_config(context))
    if suite is not None:
        parsed = _suite(stores, name=suite, field_name="gx_context.suite")
        return GxChecks(parsed, f"{context} suite {suite!r}")
    assert checkpoint is not None  # GxContextSpec names exactly one
    return _checkpoint(stores, checkpoint)


def with_gx_checks(project_suite: dict[str, Any] | None, checks: GxChecks | None) -> dict[str, Any]:
    """One suite for the run: the project's expectations, then the GX context's (each keeps its source)."""
    parts = [s for s in (project_suite, checks.suite if checks else None) if s is not None]
    if not parts:
        raise ValueError("nothing validates the data: no suite and no gx_context")
    return {
        "name": " + ".join(p["name"] for p in parts),
        "meta": dict(parts[0].get("meta") or {}),
        "expectations": [e for p in parts for e in p["expectations"]],
    }


def _context_folder(root: Path, path: str) -> Path:
    folder = (root / path).resolve()
    if not folder.is_relative_to(root):
        raise ConfigError(
            path,
            [
                f"gx_context.path: {show_value(path)} resolves to {folder}, outside the project folder {root}; "
                "keep the GX context inside the project folder (a symlink out of it is refused too)"
            ],
        )
    for candidate in (folder, folder / "gx"):
        if (candidate / CONTEXT_FILE).is_file():
            # The context file and its folder must resolve inside too (gx/ or the file may be links).
            _inside(candidate / CONTEXT_FILE, root, candidate / CONTEXT_FILE)
            return _inside(candidate, root, candidate)
    raise ConfigError(
        str(folder),
        [
            f"gx_context.path: no {CONTEXT_FILE} in {folder} nor in {folder / 'gx'}; name the folder of a "
            "file-based GX context (gx.get_context(mode='file', project_root_dir=...) creates <dir>/gx/), "
            "relative to the project folder"
        ],
    )


def _context_config(context: Path) -> dict[str, Any]:
    file = context / CONTEXT_FILE
    try:
        config, _ = load_yaml_with_lines(file)
    except YamlFileError as exc:
        raise ConfigError(str(file), exc.problems) from None
    version = config.get("config_version")
    if isinstance(version, int | float) and version < 4:
        raise ConfigError(
            str(file),
            [
                f"config_version {version}: a GX 0.x context, whose files GX 1.x (and airflow-ml) do not read; "
                "migrate it with GX 1.x, or copy the suite's JSON into expectations/ as a project suite"
            ],
        )
    return config


def _store_folder(context: Path, root: Path, config: dict[str, Any], kind: str) -> Path:
    """The folder of a store: the file backend's ``base_directory`` inside the context, else GX's default."""
    name_key, default = _STORES[kind]
    stores: dict[str, Any] = config["stores"] if isinstance(config.get("stores"), dict) else {}
    named = config.get(name_key) if name_key else None

    def chosen(store_name: str, store: Any) -> bool:
        return store_name == named if named else isinstance(store, dict) and store.get("class_name") == kind

    found = [(n, s) for n, s in stores.items() if chosen(n, s)]
    if not found:
        return _inside(context / default, root, context / CONTEXT_FILE)
    store_name, store = found[0]
    backend = store.get("store_backend") if isinstance(store, dict) else None
    backend = backend if isinstance(backend, dict) else {}
    base = backend.get("base_directory")
    problem = None
    if "module_name" in store or "module_name" in backend or backend.get("class_name") != _FILE_BACKEND:
        problem = (
            f"keeps its data in {show_value(backend.get('class_name'))} (module_name "
            f"{show_value(backend.get('module_name') or store.get('module_name'))}); airflow-ml reads a context's "
            f"own files only and never loads a store's class: use {_FILE_BACKEND} without module_name"
        )
    elif not isinstance(base, str) or base.startswith(("/", "~")) or ".." in base.split("/") or "$" in base:
        problem = f"base_directory {show_value(base)} must be a folder inside the context, written as it is"
    if problem or not isinstance(base, str):
        raise ConfigError(str(context / CONTEXT_FILE), [f"stores.{store_name}: {problem}"])
    return _inside(context / base, root, context / CONTEXT_FILE)


def _inside(path: Path, root: Path, named_in: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise ConfigError(
            str(named_in),
            [
                f"{path} resolves to {resolved}, outside the project folder {root}; keep the GX context's files "
                "inside the project folder (copy them in rather than linking out)"
            ],
        )
    return resolved


#: A store file larger than this is not a GX record (suites with thousands of expectations stay far below).
MAX_RECORD_BYTES = 20 * 1024 * 1024


def _read_record(file: Path, root: Path) -> dict[str, Any] | None:
    """One store file as JSON, with the suite files' checks; None when the JSON is not an object.

    Only a regular file is opened (a FIFO named ``x.json`` would block the read forever).
    """
    resolved = _inside(file, root, file)
    if not resolved.is_file():
        kind = "a folder" if resolved.is_dir() else "not a regular file (a pipe, socket or device)"
        raise ConfigError(str(file), [f"is {kind}; a GX store record is a JSON file: remove or rename it"])
    try:
        size = resolved.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise ConfigError(str(file), [f"{size:,} bytes, over {MAX_RECORD_BYTES:,}: not a GX store record"])
        text = resolved.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(file), [f"byte {exc.start} is not UTF-8; save the file as UTF-8 text"]) from None
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot be read ({exc.strerror}); fix its permissions or remove it"]) from None
    data, problems = load_json_checked(text)
    if problems:
        raise ConfigError(str(file), problems)
    return data if isinstance(data, dict) else None


class _Store:
    """One store folder of the context, read as GX lays it out: each record in a file named after its key.

    The named record's file is read first (GX's key: the name, its dots as subfolders for suites); only
    when a reference's id does not match it is the store scanned, skipping files that do not parse, so
    that an unrelated broken file never blocks a lookup. Each file is parsed at most once.
    """

    def __init__(self, folder: Path, root: Path, *, dotted: bool) -> None:
        self.folder, self.root, self.dotted = folder, root, dotted
        self._parsed: dict[Path, dict[str, Any] | None] = {}

    def key_file(self, name: str) -> Path:
        parts = name.split(".") if self.dotted else [name]
        return self.folder.joinpath(*parts[:-1], f"{parts[-1]}.json")

    def read(self, file: Path) -> dict[str, Any] | None:
        if file not in self._parsed:
            self._parsed[file] = _read_record(file, self.root) if file.exists() else None
        return self._parsed[file]

    def find(self, *, name: Any, record_id: Any = None) -> tuple[Path, dict[str, Any]] | None:
        """The record with ``record_id`` (GX references carry it), else the one named ``name``."""
        by_name = None
        if isinstance(name, str) and name:
            file = self.key_file(name)
            data = self.read(file)
            if data is not None and (record_id is None or data.get("id") == record_id):
                return file, data
            by_name = (file, data) if data is not None and data.get("name") == name else None
        if record_id is not None:
            for file in self._files():
                try:
                    data = self.read(file)
                except ConfigError:  # another record's problem; the named one is read above
                    continue
                if data is not None and data.get("id") == record_id:
                    return file, data
        return by_name

    def known(self) -> list[str]:
        """The names the store holds, from its file names (nothing is parsed)."""
        return sorted(".".join(f.relative_to(self.folder).with_suffix("").parts) for f in self._files())

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        pattern = "*.json" if not self.dotted else "**/*.json"
        return sorted(f for f in self.folder.glob(pattern) if f.is_file())

    def get(self, *, name: str, record_id: str | None = None, missing: str, fix: str) -> tuple[Path, dict[str, Any]]:
        """As :meth:`find`; when absent, an error saying ``missing``, what the store holds, and the fixes."""
        found = self.find(name=name, record_id=record_id)
        if found is None:
            where = f"{self.folder} (file {self.key_file(name).relative_to(self.folder)})"
            raise ConfigError(
                str(self.folder), [f"{missing} in {where} (known: {self.known()}); name one of them, or {fix}"]
            )
        return found


class _Stores:
    """The context's stores, each opened (its folder checked) when first needed, once per load."""

    def __init__(self, context: Path, root: Path, config: dict[str, Any]) -> None:
        self.context, self.root, self.config = context, root, config
        self._opened: dict[str, _Store] = {}

    def __call__(self, kind: str) -> _Store:
        if kind not in self._opened:
            folder = _store_folder(self.context, self.root, self.config, kind)
            self._opened[kind] = _Store(folder, self.root, dotted=kind == "ExpectationsStore")
        return self._opened[kind]


def _suite(stores: _Stores, *, name: str, field_name: str, suite_id: str | None = None) -> dict[str, Any]:
    missing = f"{field_name}: no expectation suite {show_value(name)}"
    fix = "add it (context.suites.add)"
    file, data = stores("ExpectationsStore").get(name=name, record_id=suite_id, missing=missing, fix=fix)
    items = data.get("expectations")
    if not isinstance(items, list) or not items:
        raise ConfigError(str(file), ["expectations: a suite needs a non-empty list of expectations"])
    return {
        "name": str(data.get("name")),
        "meta": {},
        "expectations": parse_expectations(items, str(file), {}, gx_written=True),
    }


def _checkpoint(stores: _Stores, name: str) -> GxChecks:
    missing = f"gx_context.checkpoint: no checkpoint {show_value(name)}"
    fix = "name a suite with gx_context.suite"
    file, data = stores("CheckpointStore").get(name=name, missing=missing, fix=fix)
    references = data.get("validation_definitions")
    if not isinstance(references, list) or not references:
        raise ConfigError(str(file), ["validation_definitions: the checkpoint validates nothing; list at least one"])
    definitions = stores("ValidationDefinitionStore")
    suites: list[dict[str, Any]] = []
    assets: set[tuple[str, ...]] = set()
    for reference in references:
        ref = reference if isinstance(reference, dict) else {}
        definition = definitions.find(name=ref.get("name"), record_id=ref.get("id"))
        if definition is None:
            raise ConfigError(
                str(file),
                [
                    f"validation_definitions: {show_value(ref.get('name'))} is not in {definitions.folder}; "
                    "fix the checkpoint or add the validation definition to the context"
                ],
            )
        data_ref, suite_ref = definition[1].get("data") or {}, definition[1].get("suite") or {}
        assets.add(tuple(str((data_ref.get(k) or {}).get("name")) for k in ("datasource", "asset")))
        suite_name, suite_id = str(suite_ref.get("name")), suite_ref.get("id")
        if suite_name not in (s["name"] for s in suites):
            suites.append(_suite(stores, name=suite_name, suite_id=suite_id, field_name=f"{definition[0]}: suite"))
    if len(assets) > 1:
        shown = ", ".join(f"{source}/{asset}" for source, asset in sorted(assets))
        raise ConfigError(
            str(file),
            [
                f"gx_context.checkpoint: {name!r} validates {len(assets)} data assets ({shown}), and a run's "
                "snapshot is one table; name the suite of this data with gx_context.suite instead"
            ],
        )
    return GxChecks(
        {
            "name": " + ".join(s["name"] for s in suites),
            "meta": {},
            "expectations": [e for s in suites for e in s["expectations"]],
        },
        f"{stores.context} checkpoint {name!r}",
        _checkpoint_notes(name, data, assets),
    )


def _checkpoint_notes(name: str, data: dict[str, Any], assets: set[tuple[str, ...]]) -> list[str]:
    notes = []
    actions = [a for a in data.get("actions") or [] if isinstance(a, dict)]
    if actions:
        shown = ", ".join(f"{a.get('type')} {a.get('name')!r}" for a in actions)
        notes.append(
            f"checkpoint {name!r}: {len(actions)} action(s) not run ({shown}): airflow-ml never runs a "
            "checkpoint's actions (notifications, data docs, stores); the verdict and this report are written "
            "beside the snapshot (and to MLflow when the city has an experiment)"
        )
    ((source, asset),) = assets
    notes.append(f"checkpoint {name!r}: its data asset {source}/{asset} was not read; its suites ran on the snapshot")
    return notes
