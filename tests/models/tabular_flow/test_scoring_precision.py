"""Float32 scoring (the default) against float64 on small data: the same order, scores to 1e-5."""

import numpy as np
import pytest
import torch

from flowad import FlowDetector, io
from flowad.models import FlowOptions
from flowad.models.tabular_flow.torch_model import FlowScoring


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=800), rng.gamma(2.0, size=800), rng.integers(0, 4, 800)])
    X[:, 0] += 0.5 * X[:, 1]
    return FlowDetector(max_epochs=15, random_state=0).fit(X), rng


@pytest.mark.parametrize("score_type", ["nll", "latent_norm", "mahalanobis"])
def test_float32_network_keeps_the_order_and_the_scores(fitted, score_type):
    detector, rng = fitted
    test = np.vstack([rng.normal(size=(400, 3)) * 2, [[40.0, -30.0, 7.0], [1e4, 0.0, 0.0]]])
    graphs = {dtype: FlowScoring(detector.scaler_, detector.projection_, detector.flow_, score_type,
                                 detector.latent_mean_, detector.latent_precision_, dtype)
              for dtype in (torch.float32, torch.float64)}
    with torch.no_grad():
        s32, s64 = (graphs[d](torch.as_tensor(test)).numpy() for d in (torch.float32, torch.float64))
    assert graphs[torch.float32].flow is not detector.flow_  # a float32 copy; the fitted flow stays float64
    assert next(detector.flow_.parameters()).dtype == torch.float64
    np.testing.assert_array_less(np.abs(s32 - s64) / np.maximum(1.0, np.abs(s64)), 1e-5)
    assert (np.argsort(s32, kind="stable") == np.argsort(s64, kind="stable")).all()


def test_the_detector_scores_in_the_precision_of_its_options(fitted, tmp_path):
    detector, rng = fitted
    test = rng.normal(size=(50, 3))
    assert detector.scoring_.network_dtype == torch.float32
    default = detector.score_samples(test)
    exact = io.load(io.save(detector, tmp_path / "m")).set_params(options=FlowOptions(scoring_dtype="float64"))
    assert exact.scoring_.network_dtype == torch.float32  # until it scores
    exact_scores = exact.score_samples(test)
    assert exact.scoring_.network_dtype == torch.float64
    assert not np.array_equal(default, exact_scores)
    np.testing.assert_allclose(default, exact_scores, rtol=1e-5)
    with pytest.raises(ValueError, match="scoring_dtype"):
        FlowOptions(scoring_dtype="float16")


def test_files_written_before_float32_scoring_keep_scoring_in_float64(tmp_path):
    """A format-2 file (flowad 0.2 before float32 scoring) held no ``scoring_dtype``: it loads as float64."""
    import json

    rng = np.random.default_rng(1)
    X, test = rng.normal(size=(300, 2)), rng.normal(size=(50, 2))
    exact = FlowDetector(max_epochs=3, random_state=0, options=FlowOptions(scoring_dtype="float64")).fit(X)
    io.save(exact, tmp_path / "model")
    config_path = tmp_path / "model" / io.CONFIG_FILE
    config = json.loads(config_path.read_text())
    config["params"]["options"] = None  # what flowad 0.2 wrote for the default options
    config["format_version"] = 2
    config["config_sha256"] = io.config_digest(config)
    config_path.write_text(json.dumps(config))
    loaded = io.load(tmp_path / "model")
    assert loaded.options.scoring_dtype == "float64"
    np.testing.assert_array_equal(loaded.score_samples(test), exact.score_samples(test))
