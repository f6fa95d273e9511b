"""Loaders: every benchmark, test and CLI command gets its data through here."""

from flowad.datasets.adbench import adbench_root, list_adbench, load_adbench, load_npz_folder
from flowad.datasets.builtin import load_breast_cancer_anomaly
from flowad.datasets.splits import PROTOCOLS, oneclass_split, split, subsample, unsupervised_split
from flowad.datasets.tabular import Table, read_table

__all__ = [
    "PROTOCOLS",
    "Table",
    "adbench_root",
    "list_adbench",
    "load_adbench",
    "load_breast_cancer_anomaly",
    "load_npz_folder",
    "oneclass_split",
    "read_table",
    "split",
    "subsample",
    "unsupervised_split",
]
