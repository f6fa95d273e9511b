"""Normalizing flows (torch only): vector flows from zuko through one factory."""

from flowad.flows.vector import FLOW_KINDS, build_vector_flow

__all__ = ["FLOW_KINDS", "build_vector_flow"]
