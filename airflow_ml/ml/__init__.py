"""Plain-Python machine learning core: preprocessing, LightGBM training, metrics, the gate, the registry.

Modules here import pandas, numpy, lightgbm and mlflow at module level: import them inside functions
from any module that the DAG processor parses.
"""
