"""Loaders: every benchmark, test and CLI command gets its data through here."""

from flowad.datasets.adbench import adbench_root, list_adbench, load_adbench, oneclass_split
from flowad.datasets.builtin import load_breast_cancer_anomaly
from flowad.datasets.tabular import Table, read_table

__all__ = [
    "Table",
    "adbench_root",
    "list_adbench",
    "load_adbench",
    "load_breast_cancer_anomaly",
    "oneclass_split",
    "read_table",
]
