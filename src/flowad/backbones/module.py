"""Any ``torch.nn.Module`` as a feature backbone: its outputs (a dict of named maps, a list, or one
map) or the outputs of chosen sub-modules (``taps``) become the stages, with strides found by
running one probe image through it.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
    ...                     nn.Conv2d(8, 16, 3, stride=2, padding=1))
    >>> backbone = ModuleBackbone(net, taps=("1", "2"))           # sub-modules by name
    >>> backbone.catalogue
    {'1': (2, 8), '2': (4, 16)}
    >>> tuple(tuple(f.shape) for f in backbone(torch.rand(2, 3, 32, 32)))
    ((2, 8, 16, 16), (2, 16, 8, 8))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flowad.backbones.base import FeatureBackbone

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ModuleBackbone"]

#: The channel statistics torchvision and timm models are trained with (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Enough(Exception):
    """Raised by the last tap's hook: the rest of the network is not needed."""


def _as_named(output, what: str) -> dict[str, Tensor]:
    if isinstance(output, Tensor):
        output = {"out": output}
    elif isinstance(output, (list, tuple)):
        output = {str(i): t for i, t in enumerate(output)}
    if not isinstance(output, dict) or not output:
        raise TypeError(f"{what} must return a feature map, a list of maps or a dict of named maps, "
                        f"got {type(output).__name__}")
    for name, t in output.items():
        if not isinstance(t, Tensor) or t.ndim != 4:
            raise TypeError(f"{what}'s output {name!r} must be a (N, C, h, w) tensor, got "
                            f"{getattr(t, 'shape', type(t).__name__)}")
    return {str(k): v for k, v in output.items()}


class ModuleBackbone(FeatureBackbone):
    """A frozen user network as a :class:`~flowad.backbones.base.FeatureBackbone`.

    Args:
        module: Maps RGB images ``(N, 3, H, W)`` (normalised by ``mean``/``std``) to a map, a list
            of maps or a dict name -> map ``(N, C_s, h_s, w_s)``.
        stages: Which of its maps to use (names; list outputs are named "0", "1", ...); None: all.
        taps: Instead of the module's outputs, the outputs of these sub-modules (names as in
            ``module.named_modules()``); the network stops after the deepest one.
        mean: Per-channel means subtracted from images in [0, 1] before ``module`` (e.g.
            :data:`IMAGENET_MEAN`); None: images go in as [0, 1].
        std: Per-channel spreads the centred images are divided by (e.g. :data:`IMAGENET_STD`).
        name: Name recorded in model files (default: ``"module:<class name>"``).
        probe_size: Side of the probe image that measures each stage's stride.
    """

    def __init__(self, module: nn.Module, stages: Sequence[str] | None = None, *, taps: Sequence[str] | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None, name: str | None = None,
                 probe_size: int = 256) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(module).__name__}")
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together")
        nn.Module.__init__(self)  # the catalogue needs a probe through the module first
        self.net = module
        self.taps = tuple(taps) if taps is not None else None
        if self.taps is not None:
            modules = dict(module.named_modules())
            missing = [t for t in self.taps if t not in modules]
            if missing or not self.taps:
                raise ValueError(f"taps must name sub-modules of {type(module).__name__} "
                                 f"(e.g. {[n for n in modules if n][:8]}), got {list(self.taps)!r}")
            self._tapped = [modules[t] for t in self.taps]
        self._normalisation(mean, std)
        self.requires_grad_(False)
        self.eval()
        with torch.no_grad():
            probe = self._all(torch.rand(1, 3, probe_size, probe_size, generator=torch.Generator().manual_seed(0)))
        catalogue = {k: (max(1, round(probe_size / v.shape[2])), int(v.shape[1])) for k, v in probe.items()}
        taps, hooked = self.taps, getattr(self, "_tapped", None)
        super().__init__(name or f"module:{type(module).__name__}", catalogue, stages)  # resets the module
        self.net, self.taps, self._tapped = module, taps, hooked
        self._normalisation(mean, std)
        self.freeze()

    def _normalisation(self, mean, std) -> None:
        if mean is None:
            self.mean = self.std = None
            return
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def _all(self, x: Tensor, wanted: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Every map (or those ``wanted``) for RGB images in [0, 1]."""
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.taps is None:
            return _as_named(self.net(x), f"backbone {type(self.net).__name__}")
        wanted = list(self.taps if wanted is None else wanted)
        caught: dict[str, Tensor] = {}
        stop_early = not (torch.compiler.is_compiling() or torch.compiler.is_exporting())

        def hook(name):
            def keep(_module, _inputs, output):
                caught[name] = output
                if stop_early and all(w in caught for w in wanted):
                    raise _Enough
            return keep

        handles = [m.register_forward_hook(hook(t)) for t, m in zip(self.taps, self._tapped, strict=True)
                   if t in wanted]
        try:
            self.net(x)
        except _Enough:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return _as_named({t: caught[t] for t in wanted}, f"backbone {type(self.net).__name__}")

    def features(self, x: Tensor) -> dict[str, Tensor]:
        return self._all(x, self.stages if self.taps is not None else None)
