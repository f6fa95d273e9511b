"""ONNX export of fitted models: the whole scoring graph, checked against ONNX Runtime.

- :class:`~flowad.models.FlowDetector` (MAF, RealNVP, NSF): input rows ``x`` ``(N, D)`` ->
  ``score`` ``(N,)``, exactly ``score_samples`` (for ``score_type="nll"`` the log-likelihood in
  nats, preprocessing with its tail map, PCA step and constant columns included). Rows and scores
  are float64; the flow's network runs in the detector's ``options.scoring_dtype`` (float32 by
  default), as in the detector.
- :class:`~flowad.models.FlowRatioClassifier`: rows ``x`` ``(N, D)`` -> ``score`` ``(N,)``, exactly
  ``decision_scores`` (the log posterior odds of the signal class), float64 in and out.
- :class:`~flowad.models.FastFlowDetector`: images ``(N, C, H, W)`` float32 in [0, 1] -> ``score``
  ``(N,)`` and ``anomaly_map`` ``(N, H, W)`` (resize, mirrored margin, backbone, per-image
  LayerNorm, 2D flows, margin cut, bilinear upsampling, optional Gaussian blur), in float32 like
  the detector. The image size is fixed at export time (``image_size``); the number of images is
  dynamic.
- :class:`~flowad.models.PatchCoreDetector`: the same inputs and outputs (backbone, locally aware
  patch features, distances to the memory bank held in the graph, reweighted image score).
- A detector whose backbone is itself an ONNX file is refused: that file cannot be part of a graph.

The graphs are the models' own scoring graphs (``scoring_`` of the flow detectors, the FastFlow
graph), so the export scores as ``score_samples`` does: to rounding where the network is float64,
to float32 precision (about 1e-6 relative; ONNX Runtime sums matrix products in another order)
where it is float32. Tabular graphs are traced (which keeps every float64 constant), image graphs
go through the dynamo exporter. Nothing in them
is sequential (a MAF's *inverse* is, but scoring only needs the forward direction, one pass).
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from flowad.backbones.onnx_file import OnnxBackbone
from flowad.core.extras import require
from flowad.core.safe_files import atomic_path
from flowad.models.fastflow.estimator import FastFlowDetector
from flowad.models.patchcore.estimator import PatchCoreDetector
from flowad.models.tabular_flow.estimator import FlowDetector
from flowad.models.tabular_flow.ratio import FlowRatioClassifier

__all__ = ["export_onnx", "onnx_scores"]

logger = logging.getLogger(__name__)


def _scoring_module(detector, image_size: tuple[int, int] | None) -> tuple[nn.Module, tuple[Tensor, ...], list[str]]:
    if isinstance(detector, FlowDetector):
        if not hasattr(detector, "scoring_"):
            raise TypeError(f"detector must be a fitted FlowDetector, got an unfitted {type(detector).__name__}")
        graph = copy.deepcopy(detector._graph()).to("cpu").eval()  # the graph score_samples runs
        return graph, (torch.zeros(8, graph.center.shape[0], dtype=torch.float64),), ["score"]
    if isinstance(detector, FlowRatioClassifier):
        if not hasattr(detector, "scoring_"):
            raise TypeError("detector must be a fitted FlowRatioClassifier, got an unfitted one")
        graph = copy.deepcopy(detector.scoring_).to("cpu").eval()  # the graph decision_scores runs
        return graph, (torch.zeros(8, detector.n_features_in_, dtype=torch.float64),), ["score"]
    if isinstance(detector, FastFlowDetector | PatchCoreDetector):
        kind = type(detector).__name__
        if image_size is None:
            raise ValueError(f"image_size (H, W) is needed to export a {kind} (its graph has fixed sizes)")
        h, w = (int(v) for v in image_size)
        if h < 16 or w < 16:
            raise ValueError(f"image_size must be at least (16, 16), got {image_size!r}")
        if not hasattr(detector, "flows_" if kind == "FastFlowDetector" else "memory_bank_"):
            raise TypeError(f"detector must be a fitted {kind}, got an unfitted one")
        if isinstance(detector._backbone(), OnnxBackbone):
            raise TypeError(f"this {kind} runs its backbone from the ONNX file {detector._backbone().name!r}, which "
                            f"cannot be part of an exported graph; score it with flowad, or export a detector "
                            f"fitted on the same network as a torch module")
        example = torch.rand(2, detector.n_channels_, h, w, generator=torch.Generator().manual_seed(0))
        graph = copy.deepcopy(detector._graph()).to("cpu").eval()  # the graph score_samples runs
        return graph, (example,), ["score", "anomaly_map"]
    raise TypeError("ONNX export supports FlowDetector, FlowRatioClassifier, FastFlowDetector and PatchCoreDetector, "
                    f"got {type(detector).__name__}")


def export_onnx(detector, path: str | os.PathLike, *, image_size: tuple[int, int] | None = None,
                opset: int = 18) -> Path:
    """Write a fitted model's scoring graph to an ONNX file.

    Args:
        detector: A fitted ``FlowDetector`` (input ``x`` ``(N, D)`` float64, output ``score`` ``(N,)``)
            or ``FastFlowDetector`` / ``PatchCoreDetector`` (input ``images`` ``(N, C, H, W)`` float32 in
            [0, 1], outputs ``score`` ``(N,)`` and ``anomaly_map`` ``(N, H, W)``).
        path: The ``.onnx`` file to write (replaced atomically).
        image_size: ``(H, W)`` of the images, image detectors only.
        opset: ONNX opset version.

    Returns:
        The file written.

    Raises:
        TypeError: For another kind of model.
        ValueError: For a missing or too small ``image_size``.
    """
    path = Path(path)
    module, example, outputs = _scoring_module(detector, image_size)
    name = "images" if len(outputs) == 2 else "x"
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        require("onnxscript", "scale", "ONNX export")
        import onnx

        program = torch.onnx.export(module, example, None, dynamo=True, opset_version=opset, input_names=[name],
                                    output_names=outputs, dynamic_shapes=({0: torch.export.Dim("n", min=1)},),
                                    verbose=False)
        proto = program.model_proto
        if example[0].dtype == torch.float64:
            _restore_float64_scalars(proto, program.exported_program)
        onnx.save(proto, str(tmp))
    logger.info("exported %s to %s", type(detector).__name__, path)
    return path


def _restore_float64_scalars(proto, exported_program) -> int:
    """Give float64 constants their exact values back.

    The exporter turns the graph's Python scalars (zuko's ``log(slope)``, ``log(2 pi) / 2``, the
    preprocessing's log-density constant) into float64 constants *through float32*, which moves float64
    scores by up to 1e-6 relative. Each float64 constant that equals the float32 rounding of exactly one
    of those scalars (and differs from it) gets the scalar's value. Returns how many were restored.
    """
    from onnx import numpy_helper

    scalars = {float(a) for node in exported_program.graph.nodes
               for a in (*node.args, *node.kwargs.values()) if isinstance(a, float)}
    with np.errstate(over="ignore"):
        rounded: dict[float, set[float]] = {}
        for value in scalars:
            rounded.setdefault(float(np.float32(value)), set()).add(value)

    def exact(tensor):
        array = numpy_helper.to_array(tensor)
        if array.dtype != np.float64 or array.size != 1:
            return None
        candidates = rounded.get(float(array.reshape(-1)[0]), set()) - {float(array.reshape(-1)[0])}
        if len(candidates) != 1:
            return None
        return numpy_helper.from_array(np.full(array.shape, candidates.pop(), dtype=np.float64), tensor.name)

    count = 0
    for i, tensor in enumerate(proto.graph.initializer):
        fixed = exact(tensor)
        if fixed is not None:
            proto.graph.initializer[i].CopyFrom(fixed)
            count += 1
    for node in proto.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value" and (fixed := exact(attribute.t)) is not None:
                    attribute.t.CopyFrom(fixed)
                    count += 1
    return count


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
