"""Charts a person looks at instead of JSON: the gate's evidence, the drift per feature, the holdout's fit.

Each chart is two parts: a pure function from a record (or frames) to a small frozen dataclass holding
exactly what is drawn (tested on its data), and a thin drawing function of
:mod:`~airflow_ml.ml.charts.chart_drawing` that turns it into a PNG with matplotlib (imported there, inside
the function: never while a DAG file is parsed). The steps log the PNGs as artifacts of the MLflow run that
owns them (:func:`~airflow_ml.ml.charts.chart_drawing.log_charts`).
"""
