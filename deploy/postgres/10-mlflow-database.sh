#!/usr/bin/env bash
# The MLflow tracking server's role and database, beside Airflow's (POSTGRES_USER / POSTGRES_DB).
# PostgreSQL's image runs this once, when its data volume is empty. The password comes from the
# environment as a psql variable (:'name' quotes it), never spliced into SQL by the shell.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v mlflow_user="${MLFLOW_DB_USER:-mlflow}" \
    -v mlflow_password="${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD for the mlflow role}" \
    -v mlflow_db="${MLFLOW_DB_NAME:-mlflow}" <<'SQL'
CREATE ROLE :"mlflow_user" LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE :"mlflow_db" OWNER :"mlflow_user";
SQL
