# The Airflow image of airflow-ml: the official Apache Airflow image, the locked dependencies of uv.lock and
# this project, with its DAG loaders, templates, suites and plugins baked in (docker-compose.yaml mounts the
# first three over the baked copies, so edits apply without a rebuild).
#
#   docker compose build            # or: docker build -t airflow-ml:latest .
#
# AIRFLOW_VERSION and PYTHON_VERSION must match uv.lock's apache-airflow and a Python that pyproject.toml
# allows (tests/unit/test_compose.py checks both). CeleryExecutor, Redis and PostgreSQL support (the
# celery and postgres providers, redis, psycopg2) come with the official image.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11

# Stage 1: the exact versions the test suite ran with, exported from uv.lock (runtime dependencies only).
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS requirements
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY --chown=airflow:0 pyproject.toml uv.lock /tmp/lock/
RUN cd /tmp/lock \
    && python -m uv export --frozen --no-dev --extra postgres --no-emit-project --no-hashes --no-header -o /tmp/requirements.txt

# Stage 2: the image every Airflow service of docker-compose.yaml runs.
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
# The git commit the image is built from, recorded on every training run (tag airflow_ml.code_version).
ARG AIRFLOW_ML_CODE_VERSION=""

USER root
# Named volumes copy these folders' ownership on first mount: the demo data and the admin password file
# must be writable by the airflow user (any AIRFLOW_UID, group 0, as in the official image).
RUN mkdir -p /opt/airflow/demo-data /opt/airflow/auth /opt/airflow/plugins \
    && chown -R airflow:0 /opt/airflow/demo-data /opt/airflow/auth /opt/airflow/plugins \
    && chmod -R g+rwX /opt/airflow/demo-data /opt/airflow/auth /opt/airflow/plugins
USER airflow

# Pinning apache-airflow keeps pip from moving the image's Airflow while it installs the locked versions.
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.txt

# The project itself last, so that a code change does not reinstall the dependencies.
COPY --chown=airflow:0 . /opt/airflow-ml/
RUN pip install --no-cache-dir --no-deps /opt/airflow-ml \
    && cp -r /opt/airflow-ml/dags /opt/airflow-ml/dag_templates /opt/airflow-ml/expectations /opt/airflow/ \
    && if [ -d /opt/airflow-ml/plugins ]; then cp -r /opt/airflow-ml/plugins/. /opt/airflow/plugins/; fi \
    && python -c "import airflow_ml, airflow.providers.amazon, airflow.providers.celery, airflow.providers.postgres" \
    && airflow-ml lint /opt/airflow/dag_templates --expectations /opt/airflow/expectations

ENV AIRFLOW_ML_CODE_VERSION=${AIRFLOW_ML_CODE_VERSION} \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GX_ANALYTICS_ENABLED=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    SCARF_NO_ANALYTICS=true
