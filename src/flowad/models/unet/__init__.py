"""A U-Net segmenter trained on images with pasted (synthetic) anomalies and their masks."""

from flowad.models.unet.estimator import UNet, UNetSegmenter

__all__ = ["UNet", "UNetSegmenter"]
