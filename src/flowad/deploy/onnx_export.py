"""ONNX export of fitted models: the whole scoring graph, checked against ONNX Runtime.

- :class:`~flowad.models.FlowDetector` (MAF, RealNVP, NSF): input rows ``x`` ``(N, D)`` ->
  ``score`` ``(N,)``, exactly ``score_samples`` (for ``score_type="nll"`` the log-likelihood in
  nats, preprocessing with its tail map, PCA step and constant columns included), in float64 like
  the detector.
- :class:`~flowad.models.FastFlowDetector`: images ``(N, C, H, W)`` float32 in [0, 1] -> ``score``
  ``(N,)`` and ``anomaly_map`` ``(N, H, W)`` (resize, mirrored margin, backbone, per-image
  LayerNorm, 2D flows, margin cut, bilinear upsampling, optional Gaussian blur), in float32 like
  the detector. The image size is fixed at export time (``image_size``); the number of images is
  dynamic.

Graphs are traced by torch's dynamo-based exporter (``torch.export``); nothing in them is
sequential (a MAF's *inverse* is, but scoring only needs the forward direction, one pass).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from flowad.backbones.efficientnet import EfficientNetLite0Features
from flowad.core.image_maps import gaussian_smooth
from flowad.models.fastflow.estimator import FastFlowDetector, fastflow_map
from flowad.models.tabular_flow.estimator import FlowDetector

__all__ = ["FastFlowScoring", "FlowScoring", "export_onnx", "onnx_scores"]

logger = logging.getLogger(__name__)

_LOG_2PI = math.log(2 * math.pi)
_F64 = np.finfo(np.float64)


def _finite(values: Tensor) -> Tensor:
    """NaN and -inf to the lowest finite float64, +inf to the highest (as ``finite_scores``)."""
    return torch.nan_to_num(values, nan=float(_F64.min), neginf=float(_F64.min), posinf=float(_F64.max))


class FlowScoring(nn.Module):
    """``FlowDetector.score_samples`` as one torch module (float64): rows ``(N, D)`` -> ``(N,)``.

    Args:
        detector: A fitted :class:`~flowad.models.FlowDetector`.
    """

    def __init__(self, detector: FlowDetector) -> None:
        super().__init__()
        if not isinstance(detector, FlowDetector) or not hasattr(detector, "offset_"):
            raise TypeError(f"detector must be a fitted FlowDetector, got {type(detector).__name__}")
        scaler, projection = detector.scaler_, detector.projection_
        f64 = {"dtype": torch.float64}
        self.score_type = detector.score_type
        self.n_model = scaler.n_model_features
        self.register_buffer("center", torch.as_tensor(scaler.center, **f64))
        self.register_buffer("scale", torch.as_tensor(scaler.scale, **f64))
        self.register_buffer("varying", torch.as_tensor(np.flatnonzero(scaler.varying), dtype=torch.int64))
        self.register_buffer("constant", torch.as_tensor(np.flatnonzero(~scaler.varying), dtype=torch.int64))
        self.tail_bound = float(scaler.tail_bound)
        extra = scaler.affine_log_abs_det - 0.5 * int((~scaler.varying).sum()) * _LOG_2PI
        self.has_projection = projection is not None
        if projection is not None:
            self.register_buffer("pca_mean", torch.as_tensor(projection.mean, **f64))
            self.register_buffer("pca_components", torch.as_tensor(projection.components, **f64))
            self.register_buffer("pca_scale", torch.as_tensor(projection.scale, **f64))
            self.residual_var = float(projection.residual_var)
            self.n_residual = projection.components.shape[0] - projection.n_components
            extra += projection.log_abs_det()
            if self.n_residual:
                extra -= 0.5 * self.n_residual * math.log(2 * math.pi * self.residual_var)
        self.extra = float(extra)
        self.flow = copy.deepcopy(detector.flow_).to("cpu").double()
        self.register_buffer("latent_mean", torch.as_tensor(detector.latent_mean_, **f64))
        self.register_buffer("latent_precision", torch.as_tensor(detector.latent_precision_, **f64))

    def forward(self, x: Tensor) -> Tensor:
        """Scores ``(N,)`` of rows ``x`` ``(N, D)`` float64; higher = more normal."""
        centred = x - self.center
        inputs = (centred / self.scale).index_select(1, self.varying) if self.n_model else x[:, :1] * 0.0
        extra = centred.index_select(1, self.constant).pow(2).sum(1) * -0.5 + self.extra
        if math.isfinite(self.tail_bound) and self.n_model:  # the scaler's doubly logarithmic tail map
            bound = self.tail_bound
            logs = (inputs.abs().clamp(min=bound) / bound).log()  # 0 inside [-bound, bound]
            extra = extra - (logs + logs.log1p()).sum(1)
            inputs = torch.where(logs > 0, inputs.sign() * bound * (1 + logs.log1p()), inputs)
        residual = torch.zeros_like(extra)
        if self.has_projection:
            c = inputs - self.pca_mean
            kept = c @ self.pca_components
            if self.n_residual:
                rest = c - kept @ self.pca_components.T
                residual = rest.pow(2).sum(1) / self.residual_var
                extra = extra - 0.5 * residual
            inputs = kept / self.pca_scale
        if self.score_type == "nll":
            logp = self.flow().log_prob(inputs) if self.n_model else torch.zeros_like(extra)
            return _finite(logp + extra)
        z = self.flow().transform(inputs)
        if self.score_type == "latent_norm":
            return _finite(-z.pow(2).sum(1) - residual)
        d = z - self.latent_mean
        return _finite(-((d @ self.latent_precision) * d).sum(1) - residual)


class FastFlowScoring(nn.Module):
    """``FastFlowDetector`` scoring as one torch module (float32): images ``(N, C, H, W)`` in [0, 1]
    -> ``(score (N,), anomaly_map (N, H, W))``.

    Args:
        detector: A fitted :class:`~flowad.models.FastFlowDetector`.
    """

    def __init__(self, detector: FastFlowDetector) -> None:
        super().__init__()
        if not isinstance(detector, FastFlowDetector) or not hasattr(detector, "offset_"):
            raise TypeError(f"detector must be a fitted FastFlowDetector, got {type(detector).__name__}")
        self.backbone = EfficientNetLite0Features(tuple(detector.stages))
        self.flows = nn.ModuleList([copy.deepcopy(f).to("cpu").eval() for f in detector.flows_])
        self.smooth_sigma = float(detector.smooth_sigma)
        self.image_score = detector.image_score
        self.input_size = detector.input_size
        self.reflect_margin = int(detector.reflect_margin)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        maps = fastflow_map(self.backbone, self.flows, x, self.input_size, self.reflect_margin)
        maps = gaussian_smooth(maps, self.smooth_sigma)
        flat = maps.flatten(1)
        if self.image_score == "max":
            aggregate = flat.amax(1)
        else:
            k = max(1, int(math.ceil(0.01 * flat.shape[1])))
            aggregate = torch.topk(flat, k, dim=1).values.mean(1)
        return -aggregate, maps


def _scoring_module(detector, image_size: tuple[int, int] | None) -> tuple[nn.Module, tuple[Tensor, ...], list[str]]:
    if isinstance(detector, FlowDetector):
        return FlowScoring(detector).eval(), (torch.zeros(8, detector.n_features_in_, dtype=torch.float64),), ["score"]
    if isinstance(detector, FastFlowDetector):
        if image_size is None:
            raise ValueError("image_size (H, W) is needed to export a FastFlowDetector (its graph has fixed sizes)")
        h, w = (int(v) for v in image_size)
        if h < 16 or w < 16:
            raise ValueError(f"image_size must be at least (16, 16), got {image_size!r}")
        example = torch.rand(2, detector.n_channels_, h, w, generator=torch.Generator().manual_seed(0))
        return FastFlowScoring(detector).eval(), (example,), ["score", "anomaly_map"]
    raise TypeError("ONNX export supports FlowDetector and FastFlowDetector, "
                    f"got {type(detector).__name__}")


def export_onnx(detector, path: str | os.PathLike, *, image_size: tuple[int, int] | None = None,
                opset: int = 18) -> Path:
    """Write a fitted model's scoring graph to an ONNX file.

    Args:
        detector: A fitted ``FlowDetector`` (input ``x`` ``(N, D)`` float64, output ``score`` ``(N,)``)
            or ``FastFlowDetector`` (input ``images`` ``(N, C, H, W)`` float32 in [0, 1], outputs
            ``score`` ``(N,)`` and ``anomaly_map`` ``(N, H, W)``).
        path: The ``.onnx`` file to write (replaced atomically).
        image_size: ``(H, W)`` of the images, FastFlow only.
        opset: ONNX opset version.

    Returns:
        The file written.

    Raises:
        TypeError: For another kind of model.
        ValueError: For a missing or too small ``image_size``.
    """
    module, example, outputs = _scoring_module(detector, image_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    dynamic = ({0: torch.export.Dim("n", min=1)},)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, example, None, dynamo=True, opset_version=opset,
                                    input_names=["images" if len(outputs) == 2 else "x"], output_names=outputs,
                                    dynamic_shapes=dynamic, verbose=False)
    try:
        program.save(str(tmp), external_data=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("exported %s to %s", type(detector).__name__, path)
    return path


def onnx_scores(path: str | os.PathLike, X: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
    """Scores from an exported model with ONNX Runtime (CPU), in chunks of ``batch_size`` rows.

    Args:
        path: A file written by :func:`export_onnx`.
        X: Rows ``(N, D)`` (flow models) or images ``(N, C, H, W)`` in [0, 1] (FastFlow).

    Returns:
        The first output, ``score``, shape ``(N,)``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    dtype = np.float64 if feed.type == "tensor(double)" else np.float32
    X = np.ascontiguousarray(X, dtype=dtype)
    parts = [session.run(["score"], {feed.name: X[i : i + batch_size]})[0] for i in range(0, len(X), batch_size)]
    return np.concatenate(parts) if parts else np.zeros(0)
