"""Image anomaly detectors with localisation: ``fit(images)``, ``score_samples(images)`` (one value
per image, higher = more normal) and ``anomaly_map(images)`` (``(N, H, W)``, higher = more anomalous)."""

from flowad.images.autoencoder import ConvAutoencoderDetector
from flowad.images.backbone import EfficientNetLite0Features, backbone_available
from flowad.images.base import IMAGE_SCORES, BaseImageDetector, aggregate_maps, as_image_tensor
from flowad.images.fastflow import FastFlowDetector
from flowad.images.patchflow import PatchFlowDetector
from flowad.images.unet import UNet, UNetSegmenter

#: Image detectors by short name (the CLI's ``--model``).
IMAGE_MODELS = {
    "fastflow": FastFlowDetector,
    "patchflow": PatchFlowDetector,
    "autoencoder": ConvAutoencoderDetector,
}

__all__ = [
    "IMAGE_MODELS",
    "IMAGE_SCORES",
    "BaseImageDetector",
    "ConvAutoencoderDetector",
    "EfficientNetLite0Features",
    "FastFlowDetector",
    "PatchFlowDetector",
    "UNet",
    "UNetSegmenter",
    "aggregate_maps",
    "as_image_tensor",
    "backbone_available",
]
