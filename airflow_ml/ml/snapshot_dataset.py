"""A snapshot as an MLflow dataset input of a run, from its manifest alone: the rows are never read for it.

MLflow's runs table shows a run's dataset inputs in its Dataset column (name and digest), and the run page
lists them with their source and profile. The dataset here is a :class:`mlflow.data.meta_dataset.MetaDataset`
(metadata only) whose source is the snapshot's URI (``local``, ``s3``, ``gs``... as MLflow resolves it), whose
digest is the start of the snapshot's content hash, and whose profile holds the row and column counts, the
whole hash and its scheme (``rows-sha256``, or ``parts-sha256`` with the number of parts of a partitioned one).
MLflow keeps at most 36 characters of a digest (a SQL column of that size), a SHA-256 has 64.
"""

from __future__ import annotations

import json
import logging
import warnings

from mlflow import MlflowClient
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from airflow_ml.data.snapshot import Manifest

log = logging.getLogger(__name__)

#: Characters of the content hash shown as the dataset's digest (git's short hashes are as long).
DIGEST_LENGTH = 12
#: The input tags that repeat the profile's figures, so that a run search can filter on them.
ROWS_TAG, HASH_TAG = "airflow_ml.rows", "airflow_ml.snapshot_hash"


def snapshot_input(manifest: Manifest, context: str) -> DatasetInput:
    """The snapshot of ``manifest`` as a dataset input, with ``context`` (``training``, ``validation``...).

    Args:
        manifest: The snapshot's manifest (URI, rows, columns, content hash).
        context: What the run did with it, MLflow's ``mlflow.data.context`` input tag.
    """
    name = f"{manifest.template}.{manifest.city}" if manifest.template else manifest.city
    # MLflow's own examples make one; only its stubs call ``profile`` abstract (the profile is set below).
    dataset = MetaDataset(  # type: ignore[abstract]
        _source(manifest.uri), name=f"snapshot {name}", digest=manifest.content_hash[:DIGEST_LENGTH]
    )
    fields = dataset.to_dict()
    profile = {
        "num_rows": manifest.row_count,
        "num_columns": len(manifest.columns),
        "content_hash": manifest.content_hash,
        # How the hash was computed: over the whole frame, or over the part files of a snapshot taken on Dask.
        "hash_scheme": manifest.hash_scheme,
    }
    if manifest.parts:
        profile["num_parts"] = len(manifest.parts)
    entity = Dataset(
        name=fields["name"],
        digest=fields["digest"],
        source_type=fields["source_type"],
        source=fields["source"],
        profile=json.dumps(profile),
    )
    tags = [
        InputTag(MLFLOW_DATASET_CONTEXT, context),
        InputTag(ROWS_TAG, str(manifest.row_count)),
        InputTag(HASH_TAG, manifest.content_hash),
    ]
    return DatasetInput(entity, tags=tags)


def log_snapshot_input(client: MlflowClient, run_id: str, manifest: Manifest, context: str) -> bool:
    """Log the snapshot of ``manifest`` as a dataset input of ``run_id`` (see :func:`snapshot_input`).

    The input is only shown in MLflow's UI (the run's tags carry the lineage): a server that cannot log it
    (one older than MLflow 2.4 has no ``log-inputs``) costs a warning, never the run. Returns whether it logged.
    """
    try:
        client.log_inputs(run_id, datasets=[snapshot_input(manifest, context)])
    except MlflowException as exc:
        log.warning("the snapshot %s was not logged as a dataset input of run %s: %s", manifest.uri, run_id, exc)
        return False
    return True


def _source(uri: str) -> DatasetSource:
    """The MLflow dataset source of a snapshot URI; a URI of a scheme MLflow does not know is kept as text."""
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    with warnings.catch_warnings():
        # A local path matches two registered local sources, the same class: MLflow warns, and picks it.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return resolve_dataset_source(uri)
        except MlflowException:
            return HTTPDatasetSource(uri)  # memory://, hdfs://...: a source type that only names the URI
