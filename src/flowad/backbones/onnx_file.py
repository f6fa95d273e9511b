"""An ONNX feature extractor file as a backbone, run by ONNX Runtime: its input is an image batch
``(N, 3, H, W)``, every 4D output is a stage (named as in the file). The digest is the file's
SHA-256 (weights in an external-data file included). A detector on such a backbone has no ONNX
export of its own: its backbone is already one.

Example:
    >>> backbone = OnnxBackbone("features.onnx", stages=("layer2",))   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowad.backbones.base import FeatureBackbone

__all__ = ["OnnxBackbone"]


def _file_digest(path: Path, data: bytes) -> str:
    """SHA-256 of the model with its weights, also where they sit in an external-data file beside it."""
    try:
        import onnx

        data = onnx.load(str(path)).SerializeToString()  # external data read in
    except (ImportError, ValueError, OSError):
        pass
    return hashlib.sha256(data).hexdigest()


class OnnxBackbone(FeatureBackbone):
    """A frozen ONNX feature extractor.

    Args:
        path: The ``.onnx`` file.
        stages: Output names to use; None: every 4D output.
        mean: Per-channel means subtracted from images in [0, 1] before the graph; None: as is.
        std: Per-channel spreads the centred images are divided by.
        probe_size: Side of the probe image (where the file's input size is not fixed).
    """

    def __init__(self, path: str | os.PathLike, stages: Sequence[str] | None = None, *,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 probe_size: int = 256) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("an ONNX backbone needs onnxruntime: pip install 'flowad[scale]'") from None
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"backbone file {str(path)!r} does not exist")
        data = path.read_bytes()
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            why = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            raise ValueError(f"backbone {str(path)!r} is not a readable ONNX model ({why})") from None
        inputs = session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(f"backbone {str(path)!r} must take one (N, 3, H, W) input, got "
                             f"{[tuple(i.shape) for i in inputs]}")
        fixed = [d if isinstance(d, int) else None for d in inputs[0].shape[2:]]
        self._size = tuple(fixed) if all(fixed) else None
        h, w = self._size or (probe_size, probe_size)
        outputs = [o.name for o in session.get_outputs()]
        probe = session.run(outputs, {inputs[0].name: self._normalised(np.random.default_rng(0).random(
            (1, 3, h, w), dtype=np.float32), mean, std)})
        catalogue = {n: (max(1, round(h / p.shape[2])), int(p.shape[1])) for n, p in zip(outputs, probe, strict=True)
                     if p.ndim == 4}
        if not catalogue:
            raise ValueError(f"backbone {str(path)!r} has no (N, C, h, w) output to use as features")
        super().__init__(str(path), catalogue, stages)
        self._session, self._input, self._mean, self._std = session, inputs[0].name, mean, std
        self._digest = _file_digest(path, data)
        self.freeze()

    @staticmethod
    def _normalised(x: np.ndarray, mean, std) -> np.ndarray:
        if mean is None:
            return x
        return ((x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None])

    def features(self, x: Tensor) -> dict[str, Tensor]:
        if self._size is not None and tuple(x.shape[2:]) != self._size:
            raise ValueError(f"backbone {self.name!r} takes images of {self._size[0]}x{self._size[1]} pixels as its "
                             f"graph is fixed; the prepared images are {x.shape[2]}x{x.shape[3]} (set input_size and "
                             f"reflect_margin to fit)")
        array = self._normalised(x.detach().cpu().numpy().astype(np.float32), self._mean, self._std)
        maps = self._session.run(list(self.stages), {self._input: array})
        return {s: torch.from_numpy(m).to(x.device) for s, m in zip(self.stages, maps, strict=True)}

    def __deepcopy__(self, memo):  # an InferenceSession cannot be copied; the copy shares it
        return self
