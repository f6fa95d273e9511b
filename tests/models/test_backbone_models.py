"""Image detectors on any backbone: a custom module, an ONNX file; model files that record it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowad import io
from flowad.models import FastFlowDetector, PatchCoreDetector
from tests.backbones.test_backbones import _onnx_file
from tests.backbones.tiny import TinyBackbone

ROOT = Path(__file__).resolve().parents[2]


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    base = (np.sin(np.arange(32) / 2.0)[None, :, None, None] + 1) / 2 * np.ones((n, 32, 32, 3))
    return np.clip(base * 0.8 + rng.normal(0, 0.03, base.shape), 0, 1).astype(np.float32)


def _detectors(backbone):
    return [FastFlowDetector(backbone=backbone, input_size=None, reflect_margin=8, steps=2, max_epochs=2,
                             batch_size=8, random_state=0),
            PatchCoreDetector(backbone=backbone, input_size=None, reflect_margin=8, max_patches=2000,
                              random_state=0)]


@pytest.mark.parametrize("index", [0, 1], ids=["fastflow", "patchcore"])
def test_fit_on_a_custom_backbone_save_and_score_in_a_fresh_process(index, tmp_path):
    detector = _detectors(TinyBackbone(0))[index].fit(_images(24))
    test = _images(3, seed=1)
    np.save(tmp_path / "test.npy", test)
    io.save(detector, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["params"]["backbone"]["name"] == "module:TinyBackbone"
    assert config["state"]["backbone_spec_"]["stages"] == ["s4", "s8"]
    assert len(config["state"]["backbone_spec_"]["digest"]) == 64
    script = ("import numpy as np, sys; from flowad import io; from tests.backbones.tiny import TinyBackbone; "
              "d = io.load(sys.argv[1], backbone=TinyBackbone(0)); "
              "np.save(sys.argv[2], d.score_samples(np.load(sys.argv[3])))")
    subprocess.run([sys.executable, "-c", script, tmp_path / "model", tmp_path / "s.npy", tmp_path / "test.npy"],
                   check=True, cwd=ROOT)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), detector.score_samples(test), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("index", [0, 1], ids=["fastflow", "patchcore"])
def test_a_model_refuses_to_load_without_or_with_another_backbone(index, tmp_path):
    detector = _detectors(TinyBackbone(0))[index].fit(_images(12))
    io.save(detector, tmp_path / "model")
    before = {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()}
    with pytest.raises(ValueError, match=r"custom backbone 'module:TinyBackbone'.*backbone=<the same module>"):
        io.load(tmp_path / "model")
    with pytest.raises(ValueError, match="other weights"):
        io.load(tmp_path / "model", backbone=TinyBackbone(1)).score_samples(_images(1))
    assert before == {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()}  # files untouched


def test_backbone_override_is_only_for_image_models(tmp_path):
    from flowad import IsolationForestDetector

    io.save(IsolationForestDetector(random_state=0).fit(np.random.default_rng(0).normal(size=(50, 2))), tmp_path / "m")
    with pytest.raises(ValueError, match="backbone= is only for image models"):
        io.load(tmp_path / "m", backbone=TinyBackbone())


def _tapped():
    from torch import nn

    from flowad.backbones import ModuleBackbone

    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.Tanh(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                        nn.Tanh(), nn.Conv2d(16, 4, 3, stride=2, padding=1))
    return ModuleBackbone(net, taps=("1", "3"))  # sub-modules by forward hooks, the last layer skipped


@pytest.mark.parametrize("backbone", [lambda: TinyBackbone(0), _tapped], ids=["named-outputs", "taps"])
def test_patchcore_exports_to_onnx_with_the_same_scores(backbone, tmp_path):
    pytest.importorskip("onnxscript")
    from flowad.deploy.onnx_export import export_onnx, onnx_scores

    detector = PatchCoreDetector(backbone=backbone(), input_size=None, reflect_margin=8,
                                 max_patches=2000).fit(_images(12))
    test = _images(3, seed=2)
    path = export_onnx(detector, tmp_path / "pc.onnx", image_size=(32, 32))
    import onnxruntime as ort

    session = ort.InferenceSession(str(path))
    x = test.transpose(0, 3, 1, 2).copy()
    score, maps = session.run(None, {"images": x})
    np.testing.assert_allclose(score, detector.score_samples(test), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(maps, detector.anomaly_map(test), rtol=1e-4, atol=1e-4)
    assert onnx_scores is not None


def test_an_onnx_backbone_detector_saves_by_path_and_refuses_export(tmp_path):
    from flowad.deploy.onnx_export import export_onnx

    path = _onnx_file(tmp_path / "features.onnx")
    # the whole pool as bank: no coreset tie to break
    common = {"input_size": None, "reflect_margin": 8, "coreset_ratio": 1.0}
    detector = PatchCoreDetector(backbone=str(path), **common).fit(_images(12))
    torch_twin = PatchCoreDetector(backbone=TinyBackbone(0), **common).fit(_images(12))
    test = _images(2, seed=3)
    np.testing.assert_allclose(detector.score_samples(test), torch_twin.score_samples(test), rtol=1e-4, atol=1e-5)
    io.save(detector, tmp_path / "model")
    np.testing.assert_allclose(io.load(tmp_path / "model").score_samples(test), detector.score_samples(test))
    with pytest.raises(TypeError, match="ONNX file"):
        export_onnx(detector, tmp_path / "out.onnx", image_size=(32, 32))
    _onnx_file(path, seed=1)  # the file is replaced by another network
    (tmp_path / "features.onnx.data").touch()
    with pytest.raises(ValueError, match="other weights"):
        io.load(tmp_path / "model").score_samples(test)


def test_loading_fastflow_waits_for_the_first_score_to_build_its_backbone(tmp_path):
    detector = _detectors(TinyBackbone(0))[0].fit(_images(12))
    io.save(detector, tmp_path / "model")
    loaded = io.load(tmp_path / "model", backbone=TinyBackbone(0))
    assert loaded.backbone_ is None  # the flows' channels came from the record
    np.testing.assert_allclose(loaded.score_samples(_images(2, seed=1)), detector.score_samples(_images(2, seed=1)),
                               rtol=1e-5, atol=1e-6)
