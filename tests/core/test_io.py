"""Model files: identical scores after a round trip; damaged, edited or foreign files refused."""

import json

import numpy as np
import pytest

from flowad import io, make_detector
from flowad.core import model_files
from flowad.models import DETECTORS
from tests.conftest import FAST


def _fitted(name, X):
    detector = make_detector(name, **FAST.get(name, {}))
    if "random_state" in detector.get_params():
        detector.set_params(random_state=0)
    return detector.fit(X)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_round_trip_gives_identical_scores(tmp_path, blobs, name):
    train, (test, _) = blobs
    detector = _fitted(name, train)
    io.save(detector, tmp_path / "model")
    loaded = io.load(tmp_path / "model")
    assert type(loaded) is type(detector) and loaded.get_params() == detector.get_params()
    np.testing.assert_array_equal(loaded.score_samples(test), detector.score_samples(test))
    np.testing.assert_array_equal(loaded.predict(test), detector.predict(test))
    assert loaded.offset_ == detector.offset_


def test_feature_names_survive(tmp_path, blobs):
    pd = pytest.importorskip("pandas")
    train, (test, _) = blobs
    frame = pd.DataFrame(train, columns=list("abcd"))
    detector = _fitted("maf", frame)
    io.save(detector, tmp_path / "m")
    loaded = io.load(tmp_path / "m")
    assert list(loaded.feature_names_in_) == list("abcd")
    shuffled = pd.DataFrame(test, columns=list("abcd"))[list("dcba")]  # columns are found by name
    np.testing.assert_array_equal(loaded.score_samples(shuffled), detector.score_samples(test))
    with pytest.raises(ValueError, match="lack the model's feature column"):
        loaded.score_samples(pd.DataFrame(test, columns=list("abcx")))


@pytest.fixture
def saved(tmp_path, blobs):
    path = tmp_path / "model"
    io.save(_fitted("maf", blobs[0]), path)
    return path


def test_truncated_weights_are_refused(saved):
    weights = saved / io.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="corrupted or truncated"):
        io.load(saved)


def test_edited_config_is_refused(saved):
    config = json.loads((saved / io.CONFIG_FILE).read_text())
    config["state"]["offset_"] = -1e9  # hand-edited threshold
    (saved / io.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="modified after saving"):
        io.load(saved)


def test_newer_format_is_refused(saved):
    config = json.loads((saved / io.CONFIG_FILE).read_text())
    config["format_version"] = io.FORMAT_VERSION + 1
    config["config_sha256"] = io.config_digest(config)
    (saved / io.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="upgrade flowad"):
        io.load(saved)


@pytest.mark.parametrize("content", [b"not json", b'{"format": "something-else"}', b"[1, 2]"])
def test_foreign_files_are_refused(tmp_path, content):
    (tmp_path / io.CONFIG_FILE).write_bytes(content)
    (tmp_path / io.WEIGHTS_FILE).write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="cannot load model"):
        io.load(tmp_path)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no flowad model"):
        io.load(tmp_path / "nothing")


def test_save_never_overwrites_user_data(tmp_path, blobs):
    folder = tmp_path / "my_data"
    folder.mkdir()
    (folder / "precious.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        io.save(_fitted("iforest", blobs[0]), folder)
    assert (folder / "precious.csv").read_text() == "1,2,3\n"
    afile = tmp_path / "file.txt"
    afile.write_text("keep")
    with pytest.raises(ValueError, match="is a file"):
        io.save(_fitted("iforest", blobs[0]), afile)
    assert afile.read_text() == "keep"


def test_interrupted_save_leaves_the_old_model_intact(saved, blobs, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(model_files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        io.save(_fitted("maf", blobs[0] * 2), saved)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert [p.name for p in saved.parent.iterdir() if p.name.startswith(".")] == []
    io.load(saved)


def test_overwriting_a_model_replaces_it(saved, blobs):
    new = _fitted("iforest", blobs[0])
    io.save(new, saved)
    assert type(io.load(saved)).__name__ == "IsolationForestDetector"


def test_unfitted_or_foreign_objects_are_refused(tmp_path):
    with pytest.raises(ValueError, match="fitted"):
        io.save(make_detector("maf"), tmp_path / "m")
    with pytest.raises(TypeError, match="flowad detector"):
        io.save(object(), tmp_path / "m")


def test_no_pickle_anywhere_in_the_package():
    import pathlib
    import re

    import flowad

    source = "\n".join(p.read_text() for p in pathlib.Path(flowad.__file__).parent.rglob("*.py"))
    unsafe = re.findall(r"import pickle|pickle\.loads?\(|joblib|allow_pickle=True|cloudpickle|import dill|"
                        r"read_pickle|marshal\.loads?\(|import shelve|yaml\.load\(|torch\.jit\.load", source)
    assert unsafe == []  # np.load refuses pickles by default; the Dask engine ships model paths, never models
    # the one torch.load (the backbone's published .pth weights) must use the restricted unpickler
    loads = re.findall(r"torch\.load\(.*", source)
    assert all("weights_only=True" in call for call in loads), loads
