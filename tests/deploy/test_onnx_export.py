"""ONNX export: ONNX Runtime gives flowad's scores to 1e-5 on test data."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flowad import FlowDetector, FlowEnsembleDetector, io, make_detector
from flowad.cli import app
from tests.conftest import FAST

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from flowad.deploy import export_onnx, onnx_scores  # noqa: E402
from flowad.models.tabular_flow.options import FlowOptions  # noqa: E402

#: ONNX Runtime against torch: float64 networks agree to rounding; float32 ones to float32's precision
#: (the two libraries sum matrix products in different orders).
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind, score_type, n_flows, combine",
                         [("realnvp", "latent_norm", 1, "mixture"), ("nsf", "mahalanobis", 1, "mixture"),
                          ("maf", "hybrid", 1, "mixture"),
                          ("maf", "nll", 3, "mixture"), ("maf", "nll", 3, "geometric")])
def test_flow_detectors_export_exactly(tmp_path, kind, score_type, n_flows, combine, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    X[:, 2] = 3.0  # a constant column: scored outside the flow, inside the graph
    X[:, 4] = rng.integers(0, 5, len(X))  # a discrete column (dequantised in training)
    test = np.vstack([rng.normal(size=(200, 5)) * 2, rng.uniform(-50, 50, size=(20, 5))])
    options = FlowOptions(scoring_dtype=dtype)
    if n_flows == 1:
        detector = FlowDetector(kind, score_type=score_type, options=options, random_state=0, **FAST[kind]).fit(X)
    else:
        detector = FlowEnsembleDetector(kind, n_flows=n_flows, combine=combine, options=options, random_state=0,
                                        **FAST[kind]).fit(X)
    path = export_onnx(detector, tmp_path / "model.onnx")
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(onnx_scores(path, test), detector.score_samples(test), rtol=tol, atol=tol)


def test_flow_detector_with_compressed_tails_exports_exactly(tmp_path):
    """A column reaching ~1e4 robust spreads: the graph carries the logarithmic tail map and its Jacobian."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[:, 2] = np.where(rng.random(300) < 0.8, 1e-3 * rng.normal(size=300), rng.uniform(1, 50, 300))
    test = np.vstack([X[:50], [[0.0, 0.0, 1e3], [0.0, 0.0, -20.0], [5.0, -5.0, 1e-4]]])
    detector = FlowDetector("maf", options=FlowOptions(scoring_dtype="float64"), random_state=0,
                            **FAST["maf"]).fit(X)
    assert (np.abs(X[:, 2] - detector.scaler_.center[2]) / detector.scaler_.scale[2] > 100).any()
    path = export_onnx(detector, tmp_path / "model.onnx")
    np.testing.assert_allclose(onnx_scores(path, test), detector.score_samples(test), rtol=1e-9, atol=1e-9)


def test_fastflow_exports_backbone_and_flows(tmp_path):
    from flowad.backbones.efficientnet import backbone_available
    from flowad.core.image_estimator import as_image_tensor
    from flowad.models import FastFlowDetector

    if not backbone_available():
        pytest.skip("EfficientNet-Lite0 is not installed")
    images = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3)).astype(np.uint8)
    detector = FastFlowDetector(stages=("stride4",), steps=2, max_epochs=1, image_score="top1_mean",
                                smooth_sigma=1.0, device="cpu").fit(images)
    path = export_onnx(detector, tmp_path / "fastflow.onnx", image_size=(32, 32))
    x = as_image_tensor(images[:4]).numpy()
    np.testing.assert_allclose(onnx_scores(path, x), detector.score_samples(images[:4]), atol=1e-5)
    import onnxruntime as ort

    maps = ort.InferenceSession(str(path)).run(["anomaly_map"], {"images": x})[0]
    np.testing.assert_allclose(maps, detector.anomaly_map(images[:4]), atol=1e-5)
    with pytest.raises(ValueError, match="image_size"):
        export_onnx(detector, tmp_path / "f.onnx")


def test_cli_export_of_a_maf_with_pca_step_and_refusals(tmp_path):
    rng = np.random.default_rng(1)
    columns = [f"c{i}" for i in range(80)]
    X = pd.DataFrame(rng.normal(size=(60, 80)), columns=columns)
    detector = FlowDetector("maf", random_state=0, **FAST["maf"]).fit(X)
    assert detector.projection_ is not None  # the PCA step and its Gaussian residual are in the graph
    io.save(detector, tmp_path / "flow")
    result = CliRunner().invoke(app, ["export", str(tmp_path / "flow"), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "ONNX Runtime matches flowad" in " ".join(result.output.split())
    test = rng.normal(size=(100, 80)) * 1.5
    np.testing.assert_allclose(onnx_scores(tmp_path / "m.onnx", test),
                               detector.score_samples(pd.DataFrame(test, columns=columns)), rtol=1e-5, atol=1e-5)
    io.save(make_detector("iforest").fit(X), tmp_path / "forest")
    with pytest.raises(TypeError, match="FlowDetector, FlowRatioClassifier, FastFlowDetector and PatchCoreDetector"):
        export_onnx(io.load(tmp_path / "forest"), tmp_path / "f.onnx")
    with pytest.raises(TypeError, match="fitted"):
        export_onnx(FlowDetector(), tmp_path / "f.onnx")
