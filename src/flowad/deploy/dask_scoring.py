"""Out-of-core scoring on Dask: the model mapped over the partitions of Parquet data.

``score_parquet_dask(model_dir, "data/*.parquet", "scores/")`` reads the files as a Dask DataFrame,
scores every partition on the workers and writes one Parquet file per partition
(``part.00000.parquet``, ...; columns as in :mod:`flowad.deploy.chunked`: the id columns or ``row``,
the row number over all inputs in order, then ``score``, ``p_value``, ``is_anomaly``).
A local cluster is started by default; ``scheduler="tcp://host:8786"`` uses a running one.

Workers never receive a pickled model: they get the model directory's *path* (and its checksum)
and load it themselves with :func:`flowad.io.load` (safetensors + JSON), once per worker process.
Workers must therefore see the model directory and the data at the same paths as the client
(a shared file system), as usual for Dask's Parquet reader.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from flowad.core.extras import require
from flowad.core.model_files import CONFIG_FILE, load
from flowad.deploy.chunked import (
    PART_NAME,
    expand_parquet_inputs,
    feature_columns,
    id_columns_to_read,
    prepare_output,
    score_frame,
)

__all__ = ["dask_client", "score_parquet_dask"]

logger = logging.getLogger(__name__)

_MODELS: dict[tuple[str, str], object] = {}
_LOCK = threading.Lock()


def _model(path: str, digest: str):
    """The model at ``path``, loaded once per worker process (and again when its checksum changes)."""
    with _LOCK:
        if (path, digest) not in _MODELS:
            detector = load(path, device="cpu")
            _MODELS.clear()
            _MODELS[(path, digest)] = detector
        return _MODELS[(path, digest)]


def _score_partition(frame: pd.DataFrame, path: str, digest: str, ids: list[str], offsets: list[int],
                     partition_info=None) -> pd.DataFrame:
    """Worker side: ``frame`` ``(n, D)`` (the feature and id columns) -> the score columns."""
    first = offsets[partition_info["number"]] if partition_info is not None else 0
    return score_frame(_model(path, digest), frame, ids, first)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = 2, threads_per_worker: int = 1,
                memory_limit: str | int = "auto") -> Iterator:
    """A ``distributed.Client``: connected to ``scheduler`` when given, else to a new local cluster
    of ``n_workers`` worker processes on 127.0.0.1 (closed afterwards)."""
    require("distributed", "scale", "The dask engine")
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    if int(n_workers) < 1 or int(threads_per_worker) < 1:
        raise ValueError(f"n_workers and threads_per_worker must be positive, got {n_workers}, {threads_per_worker}")
    with LocalCluster(n_workers=int(n_workers), threads_per_worker=int(threads_per_worker), processes=True,
                      host="127.0.0.1", dashboard_address=None, memory_limit=memory_limit) as cluster, \
            Client(cluster) as client:
        yield client


def score_parquet_dask(
    model_dir: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    id_columns: list[str] | None = None,
    client=None,
) -> list[Path]:
    """Score Parquet data on Dask, one output Parquet file per partition.

    Args:
        model_dir: A model directory saved by :func:`flowad.io.save` (a tabular detector).
        inputs: Parquet files, directories or glob patterns.
        output: Directory for ``part.00000.parquet``, ... (created; no other parts in it).
        scheduler: Address of a running Dask scheduler; ``None`` starts a local cluster.
        n_workers, threads_per_worker: Size of that local cluster.
        id_columns: Columns copied into the scores (default: the model's id columns present).
        client: An existing ``distributed.Client`` to use instead (``scheduler`` is then ignored).

    Returns:
        The files written, in partition order.
    """
    dd = require("dask.dataframe", "scale", "The dask engine")
    import pyarrow.parquet as pq

    files = expand_parquet_inputs(inputs)
    model_dir = Path(model_dir).resolve()
    detector = load(model_dir, device="cpu")  # refuses damaged or foreign models before any work
    if not hasattr(detector, "n_features_in_") or type(detector).__name__ == "WindowDetector":
        raise TypeError(f"the dask engine scores table models, not {type(detector).__name__}")
    digest = json.loads((model_dir / CONFIG_FILE).read_text())["config_sha256"]
    names = pq.read_schema(files[0]).names
    ids = id_columns_to_read(detector, names, id_columns)
    named = getattr(detector, "schema_", None) is not None or getattr(detector, "feature_names_in_", None) is not None
    columns = feature_columns(detector, names if named else [n for n in names if n not in ids])
    out = prepare_output(output)
    frame = dd.read_parquet([str(f.resolve()) for f in files], columns=list(dict.fromkeys([*columns, *ids])))
    meta = score_frame(detector, frame._meta, ids, 0)
    context = contextlib.nullcontext(client) if client is not None else dask_client(
        scheduler, n_workers, threads_per_worker)
    with context as active:
        # without id columns, rows are numbered over all inputs: each partition needs its first row
        lengths = active.compute(frame.map_partitions(len)).result().tolist() if not ids else [0] * frame.npartitions
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
        scores = frame.map_partitions(_score_partition, str(model_dir), digest, ids, offsets, meta=meta)
        logger.info("scoring %d partition(s) of %d file(s) on %s", frame.npartitions, len(files), active)
        write = scores.to_parquet(str(out), name_function=PART_NAME.format, write_index=False, compute=False)
        active.compute(write).result()
    return sorted(out.glob("part.*.parquet"))
