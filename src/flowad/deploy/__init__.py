"""Running fitted models beyond one process: chunked and Dask scoring of Parquet data, ONNX export.

Distributed *training* lives with the training loop (:mod:`flowad.core.distributed`). Dask,
distributed and ONNX Runtime are optional (``pip install 'flowad[scale]'``) and imported on use.
"""

from flowad.deploy.chunked import expand_parquet_inputs, feature_columns, read_scores, score_frame, score_parquet
from flowad.deploy.dask_scoring import dask_client, score_parquet_dask
from flowad.deploy.onnx_export import FastFlowScoring, FlowScoring, export_onnx, onnx_scores

__all__ = [
    "FastFlowScoring",
    "FlowScoring",
    "dask_client",
    "expand_parquet_inputs",
    "export_onnx",
    "feature_columns",
    "onnx_scores",
    "read_scores",
    "score_frame",
    "score_parquet",
    "score_parquet_dask",
]
