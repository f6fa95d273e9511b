"""Synthetic anomalies from a flow's low-likelihood region, pasted into normal images."""

from flowad.synth.paste import (
    BLENDS,
    FLOW_KINDS,
    SIMPLE_GENERATORS,
    feather,
    paste_patches,
    simple_anomalies,
    synthetic_anomalies,
)
from flowad.synth.patches import random_patches, resize_patches
from flowad.synth.sampler import BANDS, METHODS, PatchSampler

__all__ = [
    "BANDS",
    "BLENDS",
    "FLOW_KINDS",
    "METHODS",
    "SIMPLE_GENERATORS",
    "PatchSampler",
    "feather",
    "paste_patches",
    "random_patches",
    "resize_patches",
    "simple_anomalies",
    "synthetic_anomalies",
]
