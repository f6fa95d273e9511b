"""Running fitted models beyond one process: chunked and Dask scoring of Parquet data, ONNX export.

Distributed *training* lives with the training loop (:mod:`flowad.core.distributed`). Dask,
distributed and ONNX Runtime are optional (``pip install 'flowad[scale]'``); every name here is
imported on first use.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "expand_parquet_inputs": "flowad.deploy.chunked",
    "feature_columns": "flowad.deploy.chunked",
    "read_scores": "flowad.deploy.chunked",
    "score_frame": "flowad.deploy.chunked",
    "score_parquet": "flowad.deploy.chunked",
    "dask_client": "flowad.deploy.dask_scoring",
    "score_parquet_dask": "flowad.deploy.dask_scoring",
    "export_onnx": "flowad.deploy.onnx_export",
    "onnx_scores": "flowad.deploy.onnx_export",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'flowad.deploy' has no attribute {name!r}")
