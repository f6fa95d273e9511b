"""The PCA step: an exact density in all dimensions, chosen automatically for wide inputs."""

import importlib.util

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from flowad import FlowDetector, io
from flowad.evaluation import roc_auc
from flowad.models import FlowOptions
from flowad.models.tabular_flow.projection import PCAProjection, choose_components


def test_ppca_density_matches_the_implied_gaussian():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    projection = PCAProjection.fit(X, k=3)
    W, s, var = projection.components, projection.scale, projection.residual_var
    cov = W @ np.diag(s**2) @ W.T + var * (np.eye(6) - W @ W.T)
    u = projection.transform(X[:20])
    ours = (-0.5 * (u**2).sum(1) - 1.5 * np.log(2 * np.pi) + projection.log_abs_det()
            + projection.residual_log_density(X[:20]))
    np.testing.assert_allclose(ours, multivariate_normal(projection.mean, cov).logpdf(X[:20]), rtol=1e-9)
    assert np.allclose(W.T @ W, np.eye(3))


def test_full_rank_projection_has_no_residual():
    X = np.random.default_rng(1).normal(size=(50, 3))
    projection = PCAProjection.fit(X, k=3)
    assert projection.residual_var == 0 and (projection.residual_log_density(X) == 0).all()


@pytest.mark.parametrize("n, d, expected",
                         [(5000, 10, 10), (194, 30, 30), (1000, 200, 64), (150, 512, 15), (12, 8, 2), (3, 8, 2)])
def test_auto_rule(n, d, expected):
    assert choose_components(n, d) == expected


def test_wide_data_uses_the_projection_and_finds_off_subspace_anomalies(tmp_path):
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(120, 5)))[0]
    train = rng.normal(size=(300, 5)) @ basis.T * 3 + 0.05 * rng.normal(size=(300, 120))
    normal = rng.normal(size=(50, 5)) @ basis.T * 3 + 0.05 * rng.normal(size=(50, 120))
    off = normal[:20] + 0.6 * rng.normal(size=(20, 120))  # leaves the 5-d subspace
    test, y = np.vstack([normal, off]), np.r_[np.zeros(50), np.ones(20)]
    detector = FlowDetector(max_epochs=30, random_state=0).fit(train)
    assert detector.projection_ is not None and detector.projection_.n_components < 120
    assert detector.latent_codes(test).shape == (70, detector.projection_.n_components)
    for score_type in ("nll", "latent_norm", "mahalanobis"):
        assert roc_auc(y, -detector.set_params(score_type=score_type).score_samples(test)) > 0.95
    with pytest.raises(ValueError, match="score_type='mahalanobis'.*'nll'"):
        detector.predict(test)  # the threshold was set on log-likelihoods
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
        import onnxruntime

        from flowad.deploy.onnx_export import export_onnx

        session = onnxruntime.InferenceSession(str(export_onnx(detector, tmp_path / "m.onnx")),
                                               providers=["CPUExecutionProvider"])
        # the same graph; ONNX Runtime's float32 matrix products sum in another order than torch's
        np.testing.assert_allclose(session.run(["score"], {"x": test})[0], detector.score_samples(test), rtol=1e-6)
    io.save(detector, tmp_path / "m")
    np.testing.assert_allclose(io.load(tmp_path / "m").score_samples(test), detector.score_samples(test), rtol=1e-12)
    none = FlowDetector(options=FlowOptions(pca_components=None), max_epochs=2, random_state=0).fit(train[:, :10])
    assert none.projection_ is None


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-12), ("float32", 1e-6)])
def test_chunked_scoring_equals_one_pass(monkeypatch, dtype, tolerance):
    from flowad.models.tabular_flow import torch_model

    X = np.random.default_rng(0).normal(size=(300, 4))
    detector = FlowDetector(max_epochs=3, options=FlowOptions(scoring_dtype=dtype), random_state=0).fit(X)
    whole = detector.score_samples(X)
    monkeypatch.setattr(torch_model, "SCORING_CHUNK", 7)
    np.testing.assert_allclose(detector.score_samples(X), whole, rtol=tolerance, atol=tolerance)
