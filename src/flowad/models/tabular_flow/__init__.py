"""The tabular flow detectors: a normalizing flow (MAF, RealNVP, NSF) on table rows, a bagged
ensemble of flows, two-class training against negatives, and the two-flow density-ratio classifier."""

from flowad.models.tabular_flow.ensemble import FlowEnsembleDetector
from flowad.models.tabular_flow.estimator import FlowDetector
from flowad.models.tabular_flow.options import FlowOptions
from flowad.models.tabular_flow.ratio import FlowRatioClassifier
from flowad.models.tabular_flow.two_class import TwoClassFlowDetector

__all__ = ["FlowDetector", "FlowEnsembleDetector", "FlowOptions", "FlowRatioClassifier", "TwoClassFlowDetector"]
