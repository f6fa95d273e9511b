"""torchvision and timm models by name, where they are installed, with weights already on this
machine (nothing is downloaded: a missing weights file is an error that says where it belongs).

- ``torchvision:NAME`` (e.g. ``torchvision:resnet18``, ``torchvision:wide_resnet50_2``): the
  model's default ImageNet weights from the torch hub cache (``torch.hub.get_dir()/checkpoints``);
  the stages are its top-level blocks (``layer1`` ... ``layer4`` of a ResNet, ``features.N`` of
  EfficientNet and MobileNet), the deepest block at each stride.
- ``timm:NAME`` (e.g. ``timm:resnet18``): ``timm.create_model(NAME, pretrained=True,
  features_only=True)`` with the Hugging Face hub offline; stages named as timm's ``feature_info``.

Example:
    >>> backbone = hub_backbone("torchvision:resnet18", stages=("layer2", "layer3"))  # doctest: +SKIP
    >>> backbone.strides                                                              # doctest: +SKIP
    (8, 16)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from flowad.backbones.module import IMAGENET_MEAN, IMAGENET_STD, ModuleBackbone

__all__ = ["hub_backbone", "timm_backbone", "torchvision_backbone"]


def _import(package: str, spec: str):
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ImportError(f"backbone {spec!r} needs {package}, which is not installed here "
                          f"(pip install {package})") from None


def _block_taps(model: nn.Module, probe_size: int = 64) -> list[str]:
    """Top-level blocks of ``model`` (inside ``features`` when it has one) that give 4D maps,
    keeping the deepest block at each stride."""
    parent = "features." if isinstance(getattr(model, "features", None), nn.Sequential) else ""
    container = model.features if parent else model
    names = [parent + n for n, _ in container.named_children()]
    modules = dict(model.named_modules())
    shapes: dict[str, tuple] = {}
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, getattr(o, "shape", ())))
             for n in names]
    try:
        with torch.no_grad():
            model.eval()(torch.rand(1, 3, probe_size, probe_size))
    finally:
        for h in hooks:
            h.remove()
    deepest: dict[int, str] = {}
    for n in names:
        shape = shapes.get(n, ())
        if len(shape) == 4:
            deepest[max(1, round(probe_size / shape[2]))] = n
    return [deepest[s] for s in sorted(deepest)]


def torchvision_backbone(name: str, stages: Sequence[str] | None = None) -> ModuleBackbone:
    """A torchvision classification model with its default ImageNet weights, from the local cache."""
    spec = f"torchvision:{name}"
    models = _import("torchvision.models", spec)
    try:
        weights = models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        raise ValueError(f"backbone {spec!r}: torchvision has no model named {name!r}") from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not cached.is_file():
        raise FileNotFoundError(f"backbone {spec!r}: its weights are not on this machine ({cached}); copy the file "
                                f"from {weights.url} there, or pass the model itself as backbone=")
    model = models.get_model(name)
    model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
    return ModuleBackbone(model, stages, taps=_block_taps(model), mean=IMAGENET_MEAN, std=IMAGENET_STD, name=spec)


class _Features(nn.Module):
    """timm's ``features_only`` model with its outputs named after ``feature_info``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.names = [str(n) for n in model.feature_info.module_name()]

    def forward(self, x):
        return dict(zip(self.names, self.model(x), strict=True))


def timm_backbone(name: str, stages: Sequence[str] | None = None) -> ModuleBackbone:
    """A timm model's feature pyramid with pretrained weights from the local Hugging Face cache."""
    spec = f"timm:{name}"
    timm = _import("timm", spec)
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        model = timm.create_model(name, pretrained=True, features_only=True)
    except RuntimeError as err:
        raise ValueError(f"backbone {spec!r}: timm cannot build it ({err})") from None
    except OSError as err:
        raise FileNotFoundError(f"backbone {spec!r}: its weights are not in the local Hugging Face cache ({err}); "
                                f"download them once where there is a network, or pass the model as "
                                f"backbone=") from None
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    config = getattr(model, "pretrained_cfg", None) or {}
    mean, std = tuple(config.get("mean", IMAGENET_MEAN)), tuple(config.get("std", IMAGENET_STD))
    return ModuleBackbone(_Features(model), stages, mean=mean, std=std, name=spec)


def hub_backbone(spec: str, stages: Sequence[str] | None = None) -> ModuleBackbone:
    """``"torchvision:NAME"`` or ``"timm:NAME"`` -> the backbone."""
    source, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"backbone {spec!r} must be 'torchvision:NAME' or 'timm:NAME'")
    return (torchvision_backbone if source == "torchvision" else timm_backbone)(name, stages)
