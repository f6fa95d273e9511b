"""The backbone interface: modules, taps, hub names (with stand-in packages), ONNX files, digests."""

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from flowad.backbones import ModuleBackbone, resolve_backbone
from flowad.backbones.base import choose_stages, weights_digest
from flowad.backbones.efficientnet import backbone_available
from tests.backbones.tiny import TinyBackbone


def test_a_module_returning_named_maps_declares_its_stages_and_strides():
    backbone = resolve_backbone(TinyBackbone())
    assert backbone.stages == ("s4", "s8") and backbone.strides == (4, 8) and backbone.channels == (8, 16)
    maps = backbone(torch.rand(2, 1, 32, 48))  # grey images are repeated to RGB
    assert [tuple(m.shape) for m in maps] == [(2, 8, 8, 12), (2, 16, 4, 6)]
    assert resolve_backbone(TinyBackbone(), stages=("s8",)).stages == ("s8",)
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.train().training


def test_list_and_single_outputs_and_taps():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 6, 3, stride=2, padding=1))
    assert ModuleBackbone(net).catalogue == {"out": (4, 6)}
    tapped = ModuleBackbone(net, taps=("0", "1"))
    assert tapped.catalogue == {"0": (2, 4), "1": (4, 6)}
    only_first = resolve_backbone(tapped, stages=("0",))
    calls = []
    net[1].register_forward_hook(lambda *a: calls.append(1))
    assert tuple(only_first(torch.rand(1, 3, 16, 16))[0].shape) == (1, 4, 8, 8) and not calls  # stops early

    class Pair(nn.Module):
        def forward(self, x):
            return [x[:, :2, ::2, ::2], x[:, :, ::4, ::4]]
    assert ModuleBackbone(Pair()).catalogue == {"0": (2, 2), "1": (4, 3)}


def test_bad_modules_and_stages_are_refused_by_name():
    class Flat(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))
    with pytest.raises(TypeError, match=r"\(N, C, h, w\)"):
        ModuleBackbone(Flat())
    with pytest.raises(ValueError, match="stages must be distinct names.*'s4', 's8'"):
        resolve_backbone(TinyBackbone(), stages=("s16",))
    with pytest.raises(ValueError, match="taps must name sub-modules"):
        ModuleBackbone(TinyBackbone(), taps=("nope",))
    with pytest.raises(ValueError, match="backbone must be one of"):
        resolve_backbone("resnet18")
    with pytest.raises(TypeError, match="backbone must be"):
        resolve_backbone(3)


def test_digest_follows_the_weights_and_check_matches_refuses_others():
    a, b = resolve_backbone(TinyBackbone(0)), resolve_backbone(TinyBackbone(1))
    assert a.digest() == resolve_backbone(TinyBackbone(0)).digest() != b.digest()
    assert weights_digest(TinyBackbone(0)) == weights_digest(TinyBackbone(0))
    a.check_matches(resolve_backbone(TinyBackbone(0)).describe())
    a.check_matches(None)  # files from before backbones were recorded
    with pytest.raises(ValueError, match="other weights"):
        a.check_matches(b.describe())
    with pytest.raises(ValueError, match="stages"):
        resolve_backbone(TinyBackbone(0), stages=("s4",)).check_matches(a.describe())


def test_default_stages_by_stride():
    catalogue = {"a": (2, 1), "b": (4, 1), "c": (8, 1), "c2": (8, 2), "d": (16, 1)}
    assert choose_stages(catalogue, (4, 8, 16)) == ("b", "c", "d")
    assert choose_stages({"x": (3, 1), "y": (6, 1), "z": (12, 1)}, (8, 16)) == ("y", "z")  # no stride matches
    assert choose_stages({"s4": (4, 1), "s8": (8, 1)}, (8, 16)) == ("s4", "s8")  # the nearest stands in
    assert choose_stages({"s4": (4, 1)}, (8, 16)) == ("s4",)


@pytest.mark.skipif(not backbone_available("lite2"), reason="EfficientNet-Lite2 not installed")
def test_efficientnet_lite2_is_built_in():
    backbone = resolve_backbone("efficientnet_lite2", default_strides=(4, 8, 16))
    assert backbone.stages == ("stride4", "stride8", "stride16_early") and backbone.channels == (24, 48, 88)
    assert [tuple(m.shape[1:]) for m in backbone(torch.rand(1, 3, 64, 64))] == [(24, 16, 16), (48, 8, 8), (88, 4, 4)]
    assert backbone.spec() == "efficientnet_lite2"


class _FakeResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Conv2d(4, 4, 3, padding=1)
        self.layer2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.layer3 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        h = self.layer3(self.layer2(self.layer1(self.maxpool(self.conv1(x)))))
        return self.fc(h.mean((2, 3)))


def test_torchvision_names_use_cached_weights_only(monkeypatch, tmp_path):
    weights = types.SimpleNamespace(url="https://example.invalid/fake_resnet-1234.pth")
    models = types.ModuleType("torchvision.models")
    models.get_model_weights = lambda name: types.SimpleNamespace(DEFAULT=weights)
    models.get_model = lambda name: _FakeResNet()
    package = types.ModuleType("torchvision")
    package.models = models
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not on this machine.*fake_resnet-1234.pth"):
        resolve_backbone("torchvision:fake_resnet")
    (tmp_path / "checkpoints").mkdir()
    torch.save(_FakeResNet().state_dict(), tmp_path / "checkpoints" / "fake_resnet-1234.pth")
    backbone = resolve_backbone("torchvision:fake_resnet", default_strides=(4, 8))
    assert list(backbone.catalogue) == ["conv1", "layer1", "layer2", "layer3"]  # the deepest block per stride
    assert backbone.stages == ("layer1", "layer2") and backbone.name == "torchvision:fake_resnet"
    assert backbone.spec() == "torchvision:fake_resnet"
    assert [tuple(m.shape[1:]) for m in backbone(torch.rand(1, 3, 32, 32))] == [(4, 8, 8), (8, 4, 4)]


def test_timm_names_build_features_only_models(monkeypatch):
    class Features(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, stride=4, padding=1)
            self.b = nn.Conv2d(4, 8, 3, stride=2, padding=1)
            self.feature_info = types.SimpleNamespace(module_name=lambda: ["layer1", "layer2"])
            self.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}

        def forward(self, x):
            h = self.a(x)
            return [h, self.b(h)]

    seen = {}

    def create_model(name, pretrained, features_only):
        import os
        seen.update(name=name, offline=os.environ.get("HF_HUB_OFFLINE"), features_only=features_only)
        if name == "missing":
            raise OSError("not cached")
        return Features()

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    backbone = resolve_backbone("timm:fake")
    assert seen == {"name": "fake", "offline": "1", "features_only": True}
    assert backbone.catalogue == {"layer1": (4, 4), "layer2": (8, 8)}
    assert torch.allclose(backbone.mean.flatten(), torch.full((3,), 0.5))
    with pytest.raises(FileNotFoundError, match="local Hugging Face cache"):
        resolve_backbone("timm:missing")


def test_missing_hub_packages_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ImportError, match="needs timm"):
        resolve_backbone("timm:resnet18")


def _onnx_file(path, seed=0):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")

    class AsList(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = TinyBackbone(seed)

        def forward(self, x):
            maps = self.net(x)
            return maps["s4"], maps["s8"]

    torch.onnx.export(AsList().eval(), (torch.rand(1, 3, 32, 32),), str(path), dynamo=True, input_names=["images"],
                      output_names=["s4", "s8"], dynamic_shapes=({0: torch.export.Dim("n"), 2: torch.export.Dim("h"),
                                                                   3: torch.export.Dim("w")},), verbose=False)
    return path


def test_an_onnx_feature_extractor_is_a_backbone(tmp_path):
    path = _onnx_file(tmp_path / "features.onnx")
    backbone = resolve_backbone(str(path))
    assert backbone.catalogue == {"s4": (4, 8), "s8": (8, 16)}
    torch_maps = resolve_backbone(TinyBackbone(0))(x := torch.rand(2, 3, 32, 32))
    for ours, theirs in zip(backbone(x), torch_maps, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)
    assert backbone.spec() == str(path) and len(backbone.digest()) == 64
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        resolve_backbone(str(tmp_path / "bad.onnx"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_backbone(str(tmp_path / "missing.onnx"))
