"""Real file-based GX Data Contexts for tests, made by GX itself, and a local webhook that records every call.

:func:`make_gx_context` creates ``<project>/gx`` with ``gx.get_context(mode="file", project_root_dir=...)``:
a suite ``trips`` on the demo trips' columns, a pandas datasource ``warehouse`` with a dataframe asset
``trips``, a validation definition ``trips_vd`` and a checkpoint ``nightly`` whose actions build data docs
and post to a Slack webhook. GX running that checkpoint would do both; airflow-ml must do neither.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The expectations of the context's suite ``trips``: one critical, one warning (GX's own severities).
TRIPS_EXPECTATIONS = (
    ("ExpectColumnValuesToNotBeNull", {"column": "duration_min"}, "critical"),
    ("ExpectColumnValuesToBeBetween", {"column": "duration_min", "min_value": 0, "max_value": 600}, "warning"),
)


def make_gx_context(project: Path, *, webhook: str, checkpoint: str = "nightly", suite_name: str = "trips") -> Any:
    """A file context at ``project/gx`` (see the module's docstring), its suite named ``suite_name``."""
    import great_expectations as gx
    from great_expectations.checkpoint import SlackNotificationAction, UpdateDataDocsAction

    context = gx.get_context(mode="file", project_root_dir=str(project))
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=suite_name,
            expectations=[
                getattr(gx.expectations, kind)(**kwargs, severity=severity)
                for kind, kwargs, severity in TRIPS_EXPECTATIONS
            ],
        )
    )
    batch = context.data_sources.add_pandas("warehouse").add_dataframe_asset("trips")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="trips_vd", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite)
    )
    context.checkpoints.add(
        gx.Checkpoint(
            name=checkpoint,
            validation_definitions=[definition],
            actions=[
                UpdateDataDocsAction(name="docs"),
                SlackNotificationAction(name="slack", slack_webhook=webhook, notify_on="all"),
            ],
        )
    )
    return context


def data_docs_index(project: Path) -> Path:
    """Where GX's default local site writes its index when a checkpoint's data docs action runs."""
    return project / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


@contextlib.contextmanager
def recording_webhook() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server on a free port; yields its URL and the list of paths POSTed or fetched (GET) from it.

    A GET is answered with a small JSON schema, as a ``$ref`` to it would want.
    """
    calls: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer(b"ok")

        def do_GET(self) -> None:
            self._answer(b'{"type": "string"}')

        def _answer(self, body: bytes) -> None:
            calls.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", calls
    finally:
        server.shutdown()
        server.server_close()
