"""The prediction log's rows in a PostgreSQL table, upserted by ``prediction_id`` through Airflow's common SQL hook.

The parquet log (:mod:`airflow_ml.data.prediction_log`) is the record; this table is an optional copy for
applications that query predictions with SQL. A rerun of a day upserts the same ids, so the table never holds a
prediction twice. Rows go through ``DbApiHook.insert_rows`` (chunked, committed per chunk, with Airflow's SQL
lineage), its REPLACE statement being PostgreSQL's ``INSERT … ON CONFLICT (prediction_id) DO UPDATE``.

The connection is an Airflow connection of type ``postgres`` (host, port, login, password, schema = database).
The driver is psycopg2 (``psycopg2-binary``), imported only when the hook connects.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_ml.exceptions import AirflowMLError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_TABLE = "airflow_ml_predictions"
#: Where a row is in the parquet log: the table's columns after ``prediction_id``, before the log's others.
PLACE_COLUMNS = ("template", "city", "partition_date")
#: SQL types of the columns that are not ``text NOT NULL``.
_TYPES = {"prediction_id": "text PRIMARY KEY", "partition_date": "date NOT NULL"}
_TYPES |= {"prediction": "double precision", "scored_at": "timestamptz NOT NULL"}
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?")


class PredictionStoreError(AirflowMLError):
    """The prediction table cannot be used: a bad table name, or no PostgreSQL driver."""


class PredictionStoreHook(DbApiHook):
    """A PostgreSQL table of predictions, keyed by ``prediction_id``.

    Args:
        postgres_conn_id: The Airflow connection of type ``postgres``.
        table: The table, ``name`` or ``schema.name`` (lower-case letters, digits and ``_``).
    """

    conn_name_attr = "postgres_conn_id"
    default_conn_name = "postgres_default"
    conn_type = "postgres"
    hook_name = "airflow-ml prediction store"
    supports_autocommit = True
    supports_executemany = True

    def __init__(self, postgres_conn_id: str = default_conn_name, *, table: str = DEFAULT_TABLE, **kwargs: Any) -> None:
        if not _IDENTIFIER.fullmatch(table):
            raise PredictionStoreError(
                f"prediction table {table!r} is not a plain PostgreSQL name; use lower-case letters, digits and '_' "
                "(optionally 'schema.table'), e.g. 'airflow_ml_predictions'"
            )
        from airflow_ml.data.prediction_log import LOG_COLUMNS  # pandas: only once a task builds the hook

        #: The table's columns, in order; ``prediction_id`` is its primary key.
        self.columns = (LOG_COLUMNS[0], *PLACE_COLUMNS, *LOG_COLUMNS[1:])
        updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in self.columns[1:])
        # DbApiHook formats (table, columns, placeholders) into it for insert_rows(replace=True); the column
        # names are this module's constants and the values go as parameters.
        kwargs["replace_statement_format"] = (
            "INSERT INTO {} {} VALUES ({}) ON CONFLICT (prediction_id) DO UPDATE SET " + updates  # noqa: S608
        )
        kwargs["postgres_conn_id"] = postgres_conn_id
        super().__init__(**kwargs)
        self.table = table

    def get_conn(self) -> Any:
        """A psycopg2 connection to the connection's database."""
        try:
            import psycopg2  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - a dev dependency here; a runtime one where the table is used
            raise PredictionStoreError(
                "the prediction table needs the PostgreSQL driver: pip install psycopg2-binary "
                "(or apache-airflow-providers-postgres)"
            ) from exc
        conn = self.connection
        return psycopg2.connect(
            host=conn.host or "localhost",
            port=conn.port or 5432,
            user=conn.login or None,
            password=conn.password or None,
            dbname=conn.schema or None,
            connect_timeout=int(conn.extra_dejson.get("connect_timeout", 10)),
        )

    def create_table(self) -> None:
        """Create the table (and its ``(template, city, partition_date)`` index) when missing."""
        columns = ", ".join(f"{column} {_TYPES.get(column, 'text NOT NULL')}" for column in self.columns)
        index = f"{self.table.replace('.', '_')}_city_day"
        self.run(
            [
                f"CREATE TABLE IF NOT EXISTS {self.table} ({columns})",
                f"CREATE INDEX IF NOT EXISTS {index} ON {self.table} (template, city, partition_date)",
            ],
            autocommit=True,
        )

    def upsert(self, frame: pd.DataFrame, *, template: str, city: str, day: dt.date, chunk_rows: int = 5000) -> int:
        """Insert the logged rows of one day, or update those whose ``prediction_id`` is already there.

        Args:
            frame: Rows as :func:`airflow_ml.data.prediction_log.log_frame` makes them (its columns first).
            template, city, day: Where the rows are in the parquet log.
            chunk_rows: Rows per transaction.

        Returns:
            How many rows were upserted.
        """
        logged = frame[[self.columns[0], *self.columns[len(PLACE_COLUMNS) + 1 :]]].astype(object)
        logged = logged.where(logged.notna(), None)  # NaN and NaT as SQL nulls
        place = (template, city, day.isoformat())
        rows = [(record[0], *place, *record[1:]) for record in logged.itertuples(index=False, name=None)]
        self.insert_rows(
            self.table, rows, target_fields=list(self.columns), commit_every=chunk_rows, replace=True, executemany=True
        )
        return len(rows)
