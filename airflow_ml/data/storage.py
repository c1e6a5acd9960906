"""Filesystems for data URIs (local paths, ``file://``, ``s3://`` and any fsspec URL) and their errors.

Credentials never come from ``os.environ`` here: callers pass ``storage_options``, a mapping from a URL
protocol (``"s3"``) to the keyword arguments of that protocol's fsspec filesystem. A URI of another
protocol gets none, so one mapping serves a run whose data is on S3 and whose snapshots are local, or
the reverse. Operators build the mapping from an Airflow connection (``airflow_ml.hooks.storage_credentials``).
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from airflow_ml.exceptions import DataError, StorageUnreachable

#: Protocol (``"s3"``) → keyword arguments of its fsspec filesystem.
StorageOptions = Mapping[str, Mapping[str, Any]]
#: A full disk, a file over the size limit, a quota, an I/O error, a read-only mount.
_STORAGE_FAILURES = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS}


def protocol(uri: str) -> str:
    """The protocol of ``uri``: ``"s3"`` for ``s3://bucket/key``, ``"file"`` for a plain path."""
    return uri.split("://", 1)[0].lower() if "://" in uri else "file"


def filesystem(uri: str, storage_options: StorageOptions | None = None) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of ``uri`` (with the options of its protocol) and the path within it."""
    options = dict((storage_options or {}).get(protocol(uri), {}))
    return fsspec.core.url_to_fs(uri, **options)


def shippable_options(storage_options: StorageOptions | None, *, uri: str) -> dict[str, dict[str, Any]]:
    """``storage_options`` of ``uri`` as they can travel with Dask's tasks to other processes (a cluster's workers).

    s3fs takes a ``session``, and the amazon provider hands it one (``airflow_ml.hooks.storage_credentials``):
    an aiobotocore session, which does not survive pickling (its unpickled clients recurse without end, and the
    scheduler refuses the whole graph). It is replaced by what it resolves to now: its keys (``key``,
    ``secret``, ``token``) and its region, so the workers need no credentials of their own. A role's temporary
    keys are not refreshed on the workers: they hold for the task that resolved them.

    Raises:
        StorageUnreachable: as :func:`storage_errors` names it for ``uri`` (no credentials, say).
    """
    with storage_errors(uri, storage_options):
        return {name: _shippable(dict(options)) for name, options in (storage_options or {}).items()}


def _shippable(options: dict[str, Any]) -> dict[str, Any]:
    import fsspec.asyn

    session = options.pop("session", None)
    if session is None:
        return options

    async def frozen() -> Any:
        credentials = await session.get_credentials()
        return None if credentials is None else await credentials.get_frozen_credentials()

    # On fsspec's own IO loop (s3fs's): asyncio.run would fail in a caller that runs an event loop (a notebook).
    keys = fsspec.asyn.sync(fsspec.asyn.get_loop(), frozen)
    if keys is not None:
        options.update(key=keys.access_key, secret=keys.secret_key, token=keys.token)
    region = session.get_config_variable("region")
    if region:
        options["client_kwargs"] = {"region_name": region, **options.get("client_kwargs", {})}
    return options


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local disk (where folders exist on their own and files may be made read-only)."""
    return isinstance(fs, LocalFileSystem)


def display(fs: AbstractFileSystem, path: str) -> str:
    """``path`` as a person would look it up: a local path as it is, anything else as a full URL."""
    return path if is_local(fs) else str(fs.unstrip_protocol(path))


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - botocore comes with the amazon provider
        return errors
    return (*errors, BotoConnectionError, HTTPClientError)


def _credential_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import CredentialRetrievalError, NoCredentialsError
    except ImportError:  # pragma: no cover - botocore comes with the amazon provider
        return ()
    return (NoCredentialsError, CredentialRetrievalError)


@contextlib.contextmanager
def storage_errors(uri: str, storage_options: StorageOptions | None = None) -> Iterator[None]:
    """Turn an unreachable object store, missing credentials or a refused access into a DataError naming ``uri``.

    The filesystems' own retries are bounded by the options the operators pass (short connect timeouts,
    few attempts), so an endpoint that is down fails the task in seconds with this message.
    """
    try:
        yield
    except DataError:
        raise
    except PermissionError as exc:
        if "expired" in str(exc).lower():  # a role's temporary keys handed to Dask workers outlived (docs: Data)
            raise StorageUnreachable(
                f"the credentials for {uri!r} expired ({exc}); a retry of the task resolves fresh ones: give the "
                "connection's role a session longer than the task's longest step"
            ) from exc
        raise StorageUnreachable(
            f"access to {uri!r} was refused ({exc}); give the connection's credentials read and write access to it"
        ) from exc
    except _credential_errors() as exc:
        raise StorageUnreachable(
            f"no credentials to read {uri!r} ({exc}); set login/password (access key id/secret) or a role "
            "on the Airflow connection of type aws (aws_conn_id, default 'aws_default')"
        ) from exc
    except _unreachable_errors() as exc:
        endpoint = (storage_options or {}).get(protocol(uri), {}).get("endpoint_url") or "its default endpoint"
        raise StorageUnreachable(
            f"cannot reach the storage of {uri!r} at {endpoint} ({exc}); check that the service is up and the "
            "connection's endpoint_url (extra) points at it"
        ) from exc


def put_whole(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write a file that a reader sees whole or not at all.

    An object store's PUT is atomic already. On a local disk the bytes go to ``<name>.partial`` first and
    are renamed (atomic on POSIX), so a disk that fills up or a write cut short never leaves a truncated
    file under the snapshot's name; the partial file is removed when the write fails.
    """
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    partial = f"{path}.partial"
    try:
        fs.pipe_file(partial, data)
        fs.mv(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.rm_file(partial)
        raise


@contextlib.contextmanager
def writing(uri: str, setting: str) -> Iterator[None]:
    """A write into a missing bucket (or a vanished folder) names the target and the setting to fix."""
    try:
        yield
    except FileNotFoundError as exc:
        raise DataError(f"cannot write to {uri!r} ({exc}); create its bucket or folder, or fix {setting}") from exc
    except OSError as exc:
        if exc.errno not in _STORAGE_FAILURES:
            raise
        raise DataError(
            f"writing to {uri!r} failed part-way ({exc}): the storage is full or failing; nothing partial was "
            f"left under the final names and a snapshot without its manifest.json is never read; free space or fix "
            f"the storage behind {setting}, then let the task retry"
        ) from exc
