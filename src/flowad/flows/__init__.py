"""Normalizing flows (torch only): vector flows from zuko through one factory; image flows (Glow,
FastFlow's 2D flow) built from the invertible layers in ``layers2d``."""

from flowad.flows.fastflow2d import FastFlow2d
from flowad.flows.glow import Glow
from flowad.flows.layers2d import (
    ActNorm2d,
    AffineCoupling2d,
    Bijection2d,
    ChannelPermutation,
    InvConv2dLU,
    Squeeze2d,
)
from flowad.flows.mixture import FlowMixture
from flowad.flows.vector import FLOW_KINDS, build_vector_flow

__all__ = [
    "FLOW_KINDS",
    "ActNorm2d",
    "AffineCoupling2d",
    "Bijection2d",
    "ChannelPermutation",
    "FastFlow2d",
    "FlowMixture",
    "Glow",
    "InvConv2dLU",
    "Squeeze2d",
    "build_vector_flow",
]
