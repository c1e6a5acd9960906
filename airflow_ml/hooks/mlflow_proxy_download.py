"""Download artifacts that the MLflow server proxies (``mlflow-artifacts:/``), in the calling thread.

MLflow downloads the files of a folder in a thread pool of its own, and its worker threads do not inherit
the caller's :mod:`contextvars`, so the connection's header (:mod:`airflow_ml.hooks.mlflow_headers`) would
not reach them. This module lists and fetches the files itself through the server's artifact REST API
(``GET /api/2.0/mlflow-artifacts/artifacts?path=`` and ``GET /api/2.0/mlflow-artifacts/artifacts/<path>``,
public endpoints of MLflow's ``MlflowArtifactsService``), one after the other, with the headers MLflow's
providers give in the calling context, MLflow's TLS variables and its retry settings.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

import requests

_SERVICE = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass(frozen=True)
class ProxiedRoot:
    """Where a run's proxied artifacts live: the server's artifact endpoint and the run's folder under it."""

    endpoint: str  # e.g. http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts
    root: str  # e.g. 1/5a3.../artifacts


def proxied_root(artifact_uri: str, tracking_uri: str) -> ProxiedRoot | None:
    """The proxy behind ``artifact_uri``, or None when the server does not proxy these artifacts.

    ``mlflow-artifacts:/path`` resolves against the tracking server (its scheme, host and path prefix), as
    MLflow does; ``mlflow-artifacts://host:port/path`` names its own host; an ``http(s)`` URI that points at
    the artifact service is used as it is.
    """
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "mlflow-artifacts":
        tracking = urlparse(tracking_uri)
        if tracking.scheme not in ("http", "https"):
            return None
        prefix = tracking.path.rstrip("/")
        endpoint = urlunparse((tracking.scheme, parsed.netloc or tracking.netloc, prefix + _SERVICE, "", "", ""))
        return ProxiedRoot(endpoint, parsed.path.strip("/"))
    if parsed.scheme in ("http", "https") and _SERVICE in parsed.path:
        before, _, after = parsed.path.partition(_SERVICE)
        endpoint = urlunparse((parsed.scheme, parsed.netloc, before + _SERVICE, "", "", ""))
        return ProxiedRoot(endpoint, after.strip("/"))
    return None


def download(proxy: ProxiedRoot, path: str, dst_path: str | None, headers: dict[str, str]) -> str:
    """Download ``path`` (a file or a folder of the run) into ``dst_path``; return the local path.

    Like ``MlflowClient.download_artifacts``: ``dst_path`` is created if missing (a new temporary folder when
    None) and the result is ``dst_path/path``.

    Raises:
        requests.HTTPError: when the server refuses or fails a request (the response is attached).
        ValueError: when the server lists a path outside the requested folder.
    """
    destination = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="airflow-ml-artifacts-"))
    destination.mkdir(parents=True, exist_ok=True)
    destination = destination.resolve()
    path = path.strip("/")
    with _session(headers) as session:
        files = list(_walk(session, proxy, path))
        for relative in files:
            local = (destination / relative).resolve()
            if not local.is_relative_to(destination):
                raise ValueError(f"the MLflow server listed {relative!r}, outside {path!r}; nothing written there")
            local.parent.mkdir(parents=True, exist_ok=True)
            response = session.get(_url(proxy, relative), stream=True, timeout=_timeout())
            _raise_for_status(response, f"downloading artifact {relative!r}")
            with local.open("wb") as out:
                for chunk in response.iter_content(chunk_size=1024 * 1024):
                    out.write(chunk)
    local_path = destination / path if path else destination
    if path and not files:  # an empty folder
        local_path.mkdir(parents=True, exist_ok=True)
    return str(local_path)


def _walk(session: requests.Session, proxy: ProxiedRoot, path: str) -> list[str]:
    """The files under ``path`` (``path`` itself when it is a file), relative to the run's root."""
    listing = _list(session, proxy, path)
    if not listing or (len(listing) == 1 and not listing[0][1] and listing[0][0] == posixpath.basename(path)):
        return [path] if path else []
    files: list[str] = []
    for name, is_dir in listing:
        if not name or name in (".", "..") or "/" in name:
            raise ValueError(f"the MLflow server listed {name!r} in {path!r}; nothing downloaded")
        child = posixpath.join(path, name) if path else name
        files.extend(_walk(session, proxy, child) if is_dir else [child])
    return files


def _list(session: requests.Session, proxy: ProxiedRoot, path: str) -> list[tuple[str, bool]]:
    folder = posixpath.join(proxy.root, path) if path else proxy.root
    response = session.get(proxy.endpoint, params={"path": folder}, timeout=_timeout())
    _raise_for_status(response, f"listing artifacts {path!r}")
    return [(f["path"], bool(f.get("is_dir"))) for f in response.json().get("files", [])]


def _url(proxy: ProxiedRoot, relative: str) -> str:
    return f"{proxy.endpoint}/{quote(posixpath.join(proxy.root, relative))}"


def _raise_for_status(response: requests.Response, action: str) -> None:
    if response.status_code < 400:
        return
    # "Response text:" is where the refusal explanation (mlflow_auth.Identity.explain) finds the server's words.
    raise requests.HTTPError(
        f"{response.status_code} {response.reason} while {action} at {response.url}. Response text: "
        f"{response.text[:300]}",
        response=response,
    )


def _timeout() -> float:
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_TIMEOUT

    return float(MLFLOW_HTTP_REQUEST_TIMEOUT.get())


@contextlib.contextmanager
def _session(headers: dict[str, str]) -> Iterator[requests.Session]:
    """A requests session with the given headers, MLflow's retry settings and its TLS variables."""
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_TRACKING_CLIENT_CERT_PATH,
        MLFLOW_TRACKING_INSECURE_TLS,
        MLFLOW_TRACKING_SERVER_CERT_PATH,
    )
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(),
        backoff_factor=MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get(),
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
    )
    with requests.Session() as session:
        session.headers.update(headers)
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(max_retries=retry))
        verify: Any = not MLFLOW_TRACKING_INSECURE_TLS.get()
        if verify and MLFLOW_TRACKING_SERVER_CERT_PATH.get():
            verify = MLFLOW_TRACKING_SERVER_CERT_PATH.get()
        session.verify = verify
        if MLFLOW_TRACKING_CLIENT_CERT_PATH.get():
            session.cert = os.fspath(MLFLOW_TRACKING_CLIENT_CERT_PATH.get())
        yield session
