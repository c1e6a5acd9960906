"""Credentials for data URIs, from Airflow connections: the one place operators turn a conn id into fsspec options.

``s3://`` URIs get an s3fs filesystem's options built by the amazon provider from an ``aws`` connection
(keys or role, region, ``endpoint_url`` from the extra), so the data layer never reads ``os.environ``.
Local paths need nothing. Usage in an operator's ``execute``::

    options = storage_options(uri, aws_conn_id=self.aws_conn_id)
    frame = read_snapshot(uri, storage_options=options)
"""

from __future__ import annotations

from typing import Any

DEFAULT_AWS_CONN_ID = "aws_default"

_S3_PROTOCOLS = ("s3", "s3a")

#: botocore settings that make an unreachable endpoint fail a task in seconds instead of minutes; an aws
#: connection's own ``config_kwargs`` (extra) take precedence.
FAIL_FAST_CONFIG: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 60,
    "retries": {"max_attempts": 3, "mode": "standard"},
}


def storage_options(*uris: str, aws_conn_id: str | None = DEFAULT_AWS_CONN_ID) -> dict[str, dict[str, Any]]:
    """The fsspec options (by protocol, see ``airflow_ml.data.storage``) for reading and writing ``uris``.

    Args:
        uris: The URIs a task touches (source, data root, snapshot); only their protocols matter.
        aws_conn_id: The Airflow connection of type ``aws`` for ``s3://`` URIs. A missing connection
            falls back to boto's default credential chain (an instance role, say), as the provider does.

    Returns:
        ``{"s3": {...}}`` when a URI is on S3, else ``{}``; the connection is looked up only then.
    """
    protocols = {uri.split("://", 1)[0].lower() for uri in uris if "://" in uri}
    if not protocols.intersection(_S3_PROTOCOLS):
        return {}
    options = s3_options(aws_conn_id)
    return dict.fromkeys(_S3_PROTOCOLS, options)


def s3_options(aws_conn_id: str | None = DEFAULT_AWS_CONN_ID) -> dict[str, Any]:
    """Keyword arguments of ``s3fs.S3FileSystem`` from an ``aws`` connection, as ObjectStoragePath builds them.

    The provider's ``get_fs`` does the work (a session with the connection's keys or role, the endpoint
    URL, proxies); its options are taken so that the data layer opens the filesystem itself. Listings
    are not cached, so a retry sees what is on S3 now.
    """
    from airflow.providers.amazon.aws.fs.s3 import get_fs
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    configured = S3Hook(aws_conn_id=aws_conn_id).conn_config.extra_config.get("config_kwargs", {})
    fs = get_fs(aws_conn_id, {k: v for k, v in FAIL_FAST_CONFIG.items() if k not in configured})
    return {**fs.storage_options, "use_listings_cache": False}
