"""MLflow's request-header plugin: the ``Authorization`` header of the connection whose client is calling.

MLflow asks every registered :class:`RequestHeaderProvider` for headers before each REST request it sends
(``mlflow.utils.rest_utils.http_request``). This provider answers only while a call of an
:func:`airflow_ml.hooks.mlflow_auth.authenticated_client` is running in the current thread or task (a
:class:`contextvars.ContextVar` set around the call); everywhere else it adds nothing. So two clients with
different credentials work side by side in one process, and a plain ``MlflowClient`` never sends anyone's
credentials.

It is registered through the entry point group ``mlflow.request_header_provider`` of the ``airflow-ml``
distribution (``pyproject.toml``), MLflow's documented plugin mechanism; MLflow has no public function to
register a provider at run time. This module imports nothing of Airflow: MLflow loads it in any process that
talks to an MLflow server, the first time it sends a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

# The headers of the identity whose call is running in this context, or None outside such a call.
ACTIVE_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar("airflow_ml_mlflow_headers", default=None)

# The first provider built answers; a second copy of the entry point (an editable install beside a wheel)
# would otherwise make MLflow join two Authorization values into one invalid header.
_first: list[ConnectionHeaderProvider] = []


class ConnectionHeaderProvider(RequestHeaderProvider):
    """Adds the calling connection's ``Authorization`` header to MLflow's REST requests."""

    def __init__(self) -> None:
        if not _first:
            _first.append(self)

    def in_context(self) -> bool:
        """True while a call of an authenticated client runs in this context."""
        return ACTIVE_HEADERS.get() is not None and _first[0] is self

    def request_headers(self) -> dict[str, str]:
        """The active identity's headers (empty outside its calls)."""
        return dict(ACTIVE_HEADERS.get() or {})
