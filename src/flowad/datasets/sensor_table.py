"""A small sensor table as people export them: ids, time stamps, text, booleans, gaps, labels.

It is the data of the quick start (``flowad data sensors sensors.csv``) and of the table tests:
every kind of column a real export has, with a known answer.

Example:
    >>> frame = sensor_table(50, random_state=0)
    >>> frame.columns.tolist()
    ['id', 'timestamp', 'site', 'door_open', 'temp', 'power', 'label']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["sensor_table"]


def sensor_table(n: int = 400, n_anomalies: int = 10, n_missing: int = 4, random_state: int | None = 0) -> pd.DataFrame:
    """Readings of a cold room: ``power`` follows ``temp``; anomalies draw 25 W too much.

    Columns: ``id`` (text, unique), ``timestamp`` (ISO 8601, one a minute), ``site`` (text, three
    values), ``door_open`` (boolean), ``temp`` (deg C, ``n_missing`` gaps), ``power`` (W) and
    ``label`` (1 on the ``n_anomalies`` rows whose power is off).

    Args:
        n: Rows.
        n_anomalies: Rows whose power is 25 W above what their temperature explains.
        n_missing: Rows with no temperature reading.
        random_state: Seed.

    Returns:
        A DataFrame of ``n`` rows.
    """
    if n < max(n_anomalies, n_missing, 1):
        raise ValueError(f"n must be at least n_anomalies and n_missing, got n={n}")
    rng = np.random.default_rng(random_state)
    temp = rng.normal(20, 2, n)
    frame = pd.DataFrame({
        "id": [f"s-{i:04d}" for i in range(n)],
        "timestamp": pd.date_range("2026-01-01", periods=n, freq="min").strftime("%Y-%m-%dT%H:%M:%S"),
        "site": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
        "door_open": rng.random(n) < 0.1,
        "temp": temp,
        "power": 3 * temp + rng.normal(0, 1, n),
        "label": 0,
    })
    anomalies = rng.choice(n, n_anomalies, replace=False)
    frame.loc[anomalies, "power"] += 25
    frame.loc[anomalies, "label"] = 1
    frame.loc[rng.choice(n, n_missing, replace=False), "temp"] = np.nan
    return frame
