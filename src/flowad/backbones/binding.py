"""How an image detector holds its backbone: built on first use from the ``backbone`` and
``stages`` parameters, recorded when fitted (:meth:`FeatureBackbone.describe`), and checked
against that record whenever it is built again (after loading a model file), so that a model
never scores through another network than the one it learnt from.

Example:
    >>> class Detector(BackboneBinding):   # an image detector with ``backbone``, ``stages``, ``device_``
    ...     default_strides = (8, 16)
"""

from __future__ import annotations

import numpy as np
import torch

from flowad.backbones import resolve_backbone
from flowad.backbones.base import FeatureBackbone

__all__ = ["BackboneBinding"]


class BackboneBinding:
    """Mixin for detectors with ``backbone``, ``stages``, ``input_size``, ``reflect_margin`` and
    ``device_`` attributes.

    Attributes:
        default_strides: Strides whose stages are used when ``stages`` is None.
        backbone_spec_: The fitted backbone's description (None in files saved before backbones were recorded).
    """

    default_strides: tuple[int, ...] = (4, 8, 16)

    def _check_backbone_params(self) -> None:
        """ValueError naming ``stages``, ``input_size`` or ``reflect_margin`` when one is malformed."""
        if self.stages is not None and (isinstance(self.stages, str) or not tuple(self.stages)):
            raise ValueError(f"stages must be None or a non-empty sequence of stage names, got {self.stages!r}")
        if self.input_size is not None and (not isinstance(self.input_size, int | np.integer) or self.input_size < 8):
            raise ValueError(f"input_size must be None or an integer >= 8, got {self.input_size!r}")
        if not isinstance(self.reflect_margin, int | np.integer) or self.reflect_margin < 0:
            raise ValueError(f"reflect_margin must be a non-negative integer, got {self.reflect_margin!r}")

    def _check_margin(self, stride: int) -> None:
        """ValueError unless ``reflect_margin`` is a multiple of ``stride`` (of the built backbone)."""
        backbone = self._backbone()
        if self.reflect_margin % stride:
            raise ValueError(f"reflect_margin must be a multiple of {stride} for stages {backbone.stages} of "
                             f"{backbone.name} (strides {backbone.strides}), got {self.reflect_margin!r}")

    def _bind_backbone(self) -> FeatureBackbone:
        """Build the backbone for a new fit and record it."""
        self.backbone_ = None
        self.backbone_spec_ = None
        backbone = self._backbone()
        self.backbone_spec_ = backbone.describe()
        return backbone

    def _backbone(self) -> FeatureBackbone:
        if getattr(self, "backbone_", None) is None:
            spec = self.backbone
            if isinstance(spec, dict):  # a custom module's placeholder from a model file
                raise ValueError(f"this model was fitted with the custom backbone {spec.get('name')!r}; load it with "
                                 f"flowad.io.load(path, backbone=<the same module>)")
            recorded = getattr(self, "backbone_spec_", None)
            if self.stages is not None:
                stages = tuple(self.stages)
            else:  # a fitted model uses the stages it was fitted with
                stages = tuple(recorded["stages"]) if recorded else None
            backbone = resolve_backbone(spec, stages, self.default_strides)
            backbone.check_matches(recorded)
            self.backbone_ = backbone.to(getattr(self, "device_", torch.device("cpu")))
        return self.backbone_

    def _backbone_state(self) -> dict:
        spec = getattr(self, "backbone_spec_", None)
        return {} if spec is None else {"backbone_spec_": spec}

    def _load_backbone_state(self, state: dict) -> None:
        self.backbone_ = None
        self.backbone_spec_ = state.get("backbone_spec_")
