"""Real labelled series, read in place from installed packages (nothing is copied or downloaded).

- **UCR anomaly archive #135** ``InternalBleeding16`` (Wu and Keogh, "Current Time Series Anomaly
  Detection Benchmarks are Flawed and are Creating the Illusion of Progress", arXiv:2009.13807), in
  the data of the PyPI package ``aeon`` (``aeon/datasets/data/KDD-TSAD_135/``): ``*_TEST.csv`` is the
  whole series (7,501 points, columns ``timestamp, value, is_anomaly``), ``*_TRAIN.csv`` its first
  1,200 points. The archive's file name convention ``135_UCR_Anomaly_InternalBleeding16_1200_4187_4199``
  says the same: training part up to 1,200, anomaly at points 4,187-4,198 (``is_anomaly``; checked).
- **Yahoo S5** (Yahoo Webscope "S5 - A Labeled Anomaly Detection Dataset"), one series of 1,000
  points with 7 labelled point anomalies, in ``sktime/datasets/data/yahoo/yahoo.csv`` (``data,label``).
- **MIT-BIH arrhythmia ECG** excerpt (Moody and Mark, IEEE EMB Magazine 2001; PhysioNet), 7,500
  samples with one labelled range of 352 samples, in ``sktime/datasets/data/mitdb/mitdb.csv``.

The sources define a training part only for UCR; for Yahoo and MIT-BIH the training part here is a
fixed prefix that holds no labelled anomaly (400 and 3,000 points; the first anomalies are at 431 and
6,936). Files are found with :func:`importlib.util.find_spec`, which does not import the packages, so
they can be installed with ``pip install --no-deps aeon==1.6.0 sktime==1.2.0``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["REAL_SERIES", "LabelledSeries", "load_mitdb", "load_series", "load_ucr135", "load_yahoo", "series_file"]

_UCR = Path("datasets") / "data" / "KDD-TSAD_135" / "135_UCR_Anomaly_InternalBleeding16_TEST.csv"
_YAHOO = Path("datasets") / "data" / "yahoo" / "yahoo.csv"
_MITDB = Path("datasets") / "data" / "mitdb" / "mitdb.csv"
_UCR_TRAIN = 1200
_YAHOO_TRAIN = 400
_MITDB_TRAIN = 3000


@dataclass
class LabelledSeries:
    """A labelled series split in time.

    Attributes:
        name: Short name.
        train: Normal training part, shape ``(T_train, C)``.
        test: Test part, shape ``(T_test, C)``, following the training part in time.
        test_labels: Shape ``(T_test,)`` int64, 1 = anomalous point.
        channels: Channel names, length ``C``.
        test_start: Index of the first test point in the original series.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    channels: tuple[str, ...]
    test_start: int


def series_file(package: str, relative: Path) -> Path:
    """Path of a data file inside an installed package (not imported).

    Raises:
        FileNotFoundError: If the package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(package)
    hint = f"pip install --no-deps {'aeon==1.6.0' if package == 'aeon' else 'sktime==1.2.0'}"
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"this series needs the package {package!r} ({hint})")
    for location in spec.submodule_search_locations:
        if (Path(location) / relative).is_file():
            return Path(location) / relative
    raise FileNotFoundError(f"{relative} not found in the installed {package!r} ({hint})")


def _read(path: Path, value: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path)
    if value not in frame or label not in frame:
        raise ValueError(f"{path.name}: expected columns {value!r} and {label!r}, got {list(frame.columns)}")
    values = frame[value].to_numpy(dtype=np.float64)
    labels = frame[label].to_numpy().astype(np.int64)
    if not np.isfinite(values).all() or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path.name}: values must be finite and labels 0/1")
    return values, labels


def _split(name: str, values: np.ndarray, labels: np.ndarray, n_train: int, channel: str) -> LabelledSeries:
    if labels[:n_train].any():
        raise ValueError(f"{name}: the training part (first {n_train} points) holds labelled anomalies")
    return LabelledSeries(name, values[:n_train, None], values[n_train:, None], labels[n_train:], (channel,), n_train)


def load_ucr135() -> LabelledSeries:
    """UCR anomaly archive #135 (InternalBleeding16): 1,200 training points, 6,301 test points, one
    labelled anomaly of 12 points (4,187-4,198 in the whole series)."""
    values, labels = _read(series_file("aeon", _UCR), "value", "is_anomaly")
    return _split("ucr135", values, labels, _UCR_TRAIN, "value")


def load_yahoo() -> LabelledSeries:
    """The Yahoo S5 series in sktime: 400 training points, 600 test points with 7 point anomalies."""
    values, labels = _read(series_file("sktime", _YAHOO), "data", "label")
    return _split("yahoo", values, labels, _YAHOO_TRAIN, "value")


def load_mitdb() -> LabelledSeries:
    """The MIT-BIH ECG excerpt in sktime: 3,000 training samples, 4,500 test samples with one
    labelled range of 352 samples."""
    values, labels = _read(series_file("sktime", _MITDB), "data", "label")
    return _split("mitdb", values, labels, _MITDB_TRAIN, "ecg")


#: Loaders by name.
REAL_SERIES = {"ucr135": load_ucr135, "yahoo": load_yahoo, "mitdb": load_mitdb}


def load_series(name: str) -> LabelledSeries:
    """One of :data:`REAL_SERIES` by name."""
    if name not in REAL_SERIES:
        raise ValueError(f"name must be one of {list(REAL_SERIES)}, got {name!r}")
    return REAL_SERIES[name]()
