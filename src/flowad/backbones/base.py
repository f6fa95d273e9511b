"""What every feature backbone of the image detectors is: a frozen module from images to feature
maps at declared stages.

A backbone knows its *catalogue* (every stage it can tap: name -> stride, in increasing depth),
the stages chosen from it, and a digest of its weights, which the model files record so that a
model is never scored through another network than the one it was fitted on.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Halves(FeatureBackbone):
    ...     def __init__(self):
    ...         super().__init__("halves", {"s2": (2, 3), "s4": (4, 3)}, None)
    ...         self.pool = nn.AvgPool2d(2)
    ...     def features(self, x):
    ...         h = self.pool(x)
    ...         return {"s2": h, "s4": self.pool(h)}
    >>> backbone = Halves()
    >>> tuple(tuple(f.shape) for f in backbone(torch.rand(1, 3, 16, 16)))
    ((1, 3, 8, 8), (1, 3, 4, 4))
    >>> backbone.strides
    (2, 4)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["FeatureBackbone", "choose_stages", "weights_digest"]


def weights_digest(module: nn.Module) -> str:
    """SHA-256 (hex) of a module's parameters and buffers, by name: equal digests, equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        array = tensor.detach().cpu().contiguous().numpy() if tensor.dtype != torch.bfloat16 else \
            tensor.detach().float().cpu().numpy()
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def choose_stages(catalogue: dict[str, tuple[int, int]], strides: Sequence[int]) -> tuple[str, ...]:
    """Default stages: for each wanted stride, the first catalogue stage with that stride, or, where
    there is none, the unchosen stage whose stride is nearest (in octaves); in catalogue order.

    Args:
        catalogue: Stage name -> ``(stride, channels)``, in increasing depth.
        strides: Wanted strides, e.g. ``(4, 8, 16)``.
    """
    order = list(catalogue)
    chosen: list[str] = []
    for wanted in sorted(strides, key=lambda w: not any(s == w for s, _ in catalogue.values())):  # exact first
        free = [n for n in order if n not in chosen]
        if not free:
            break
        chosen.append(min(free, key=lambda n: (abs(math.log2(catalogue[n][0] / wanted)), order.index(n))))
    return tuple(sorted(chosen, key=order.index))


class FeatureBackbone(nn.Module):
    """Frozen, eval-mode feature extractor: images ``(N, C, H, W)`` in [0, 1] (``C`` 1, repeated to
    RGB, or 3) -> one map ``(N, C_s, ~H / stride_s, ~W / stride_s)`` per chosen stage.

    Subclasses fill the catalogue, call ``super().__init__`` and implement :meth:`features`
    (a dict stage name -> map holding at least the chosen stages).

    Args:
        name: How the backbone is named in model files (``"efficientnet_lite0"``, ``"torchvision:resnet18"``).
        catalogue: Every stage it can tap: name -> ``(stride, channels)``, in increasing depth.
        stages: The stages to return (names from the catalogue); None: all of them.

    Attributes:
        stages, strides, channels: The chosen stages, in catalogue order, and their strides and channels.
    """

    def __init__(self, name: str, catalogue: dict[str, tuple[int, int]], stages: Sequence[str] | None) -> None:
        super().__init__()
        self.name = str(name)
        self.catalogue = {str(k): (int(s), int(c)) for k, (s, c) in catalogue.items()}
        if stages is None:
            stages = tuple(self.catalogue)
        if isinstance(stages, str):
            stages = (stages,)
        stages = tuple(stages)
        unknown = [s for s in stages if s not in self.catalogue]
        if unknown or not stages or len(set(stages)) != len(stages):
            raise ValueError(f"stages must be distinct names from the {self.name} backbone's stages "
                             f"{list(self.catalogue)}, got {stages!r}")
        order = list(self.catalogue)
        self.stages = tuple(sorted(stages, key=order.index))
        self.strides = tuple(self.catalogue[s][0] for s in self.stages)
        self.channels = tuple(self.catalogue[s][1] for s in self.stages)
        self._digest: str | None = None

    def freeze(self) -> None:
        """No gradients, eval mode for good (call at the end of a subclass's ``__init__``)."""
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureBackbone:
        return super().train(False)  # frozen: batch-norm statistics never change

    def features(self, x: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """Maps by stage name for RGB images ``(N, 3, H, W)`` in [0, 1]."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        maps = self.features(x)
        return [maps[s] for s in self.stages]

    def digest(self) -> str:
        """:func:`weights_digest` of the network (computed once)."""
        if self._digest is None:
            self._digest = weights_digest(self)
        return self._digest

    def spec(self) -> str | None:
        """The ``backbone=`` string that builds this network again (a name or a file), or None for a
        custom module, whose code a model file cannot hold."""
        if self.name.startswith(("efficientnet_", "torchvision:", "timm:")) or self.name.lower().endswith(".onnx"):
            return self.name
        return None

    def describe(self) -> dict:
        """What a model file records: name, stages, strides, channels and the weights' digest."""
        return {"name": self.name, "stages": list(self.stages), "strides": list(self.strides),
                "channels": list(self.channels), "digest": self.digest()}

    def check_matches(self, recorded: dict | None) -> None:
        """ValueError unless this backbone is the one ``recorded`` (a :meth:`describe` dict) names;
        None (files from before backbones were recorded) passes."""
        if not recorded:
            return
        if list(recorded.get("stages", [])) != list(self.stages):
            raise ValueError(f"backbone stages {list(self.stages)} differ from the stages the model was fitted "
                             f"with {recorded.get('stages')}")
        if recorded.get("digest") and recorded["digest"] != self.digest():
            raise ValueError(f"backbone {self.name!r} has other weights (digest {self.digest()[:12]}) than the one "
                             f"the model was fitted with ({recorded.get('name')!r}, digest {recorded['digest'][:12]}); "
                             f"score with the same backbone or refit")
