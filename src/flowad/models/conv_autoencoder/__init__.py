"""A convolutional autoencoder for images, scored by reconstruction error (a baseline)."""

from flowad.models.conv_autoencoder.estimator import ConvAutoencoderDetector

__all__ = ["ConvAutoencoderDetector"]
