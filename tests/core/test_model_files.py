"""Model files: saves that never lose a model or a user's file, loads that refuse bad files early."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from flowad import io
from flowad.core import model_files
from flowad.core.model_files import MODEL_CLASSES, model_class
from flowad.models import FlowDetector, IsolationForestDetector

FAST_FLOW = dict(transforms=2, hidden_features=(8, 8), max_epochs=3, calibration="split", random_state=0)


@pytest.fixture
def data():
    return np.random.default_rng(0).normal(size=(300, 3))


@pytest.fixture
def saved(tmp_path, data):
    path = tmp_path / "model"
    io.save(FlowDetector(**FAST_FLOW).fit(data), path)
    return path


def _rewrite_config(path, edit):
    config = json.loads((path / io.CONFIG_FILE).read_text())
    edit(config)
    config["config_sha256"] = io.config_digest(config)
    (path / io.CONFIG_FILE).write_text(json.dumps(config))


def test_refit_into_a_model_folder_keeps_the_users_files(saved, data):
    (saved / "NOTES.txt").write_text("trained on the March data")
    io.save(IsolationForestDetector(random_state=0).fit(data), saved)
    assert (saved / "NOTES.txt").read_text() == "trained on the March data"
    assert type(io.load(saved)).__name__ == "IsolationForestDetector"
    assert sorted(p.name for p in saved.iterdir()) == ["NOTES.txt", "config.json", "weights.safetensors"]


def test_folders_and_files_follow_the_umask(tmp_path, data):
    previous = os.umask(0o022)
    try:
        path = io.save(IsolationForestDetector(random_state=0).fit(data), tmp_path / "a" / "model")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o755
    assert (path / io.CONFIG_FILE).stat().st_mode & 0o777 == 0o644


_KILLED_BETWEEN_RENAMES = """
import os, sys, numpy as np
from flowad import io
from flowad.core import model_files
from flowad.models import IsolationForestDetector
X = np.random.default_rng(0).normal(size=(300, 3))
real, calls = os.replace, []
def replace(src, dst):
    calls.append(dst)
    if len(calls) == 2:
        os._exit(9)  # the process dies between the two renames: no cleanup runs
    real(src, dst)
model_files.os.replace = replace
io.save(IsolationForestDetector(random_state=0).fit(X), sys.argv[1])
"""


def test_a_save_killed_between_its_renames_leaves_a_loadable_model(saved, data):
    result = subprocess.run([sys.executable, "-c", _KILLED_BETWEEN_RENAMES, str(saved)], timeout=120)
    assert result.returncode == 9
    assert any(".flowad-tmp-" in p.name for p in saved.iterdir())  # the new configuration, still pending
    loaded = io.load(saved)  # new weights beside the old config: the pending config completes the save
    new = IsolationForestDetector(random_state=0).fit(data)
    np.testing.assert_array_equal(loaded.score_samples(data), new.score_samples(data))
    io.save(new, saved)  # the next save removes what the killed one left
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "weights.safetensors"]


_SAVE_LOOP = """
import sys, numpy as np
from flowad import io
from flowad.models import IsolationForestDetector
X = np.random.default_rng(0).normal(size=(200, 3))
models = [IsolationForestDetector(n_estimators=k, random_state=0).fit(X) for k in (5, 40)]
print("ready", flush=True)
i = 0
while True:
    io.save(models[i % 2], sys.argv[1]); i += 1
"""


def test_killing_saves_at_random_moments_never_loses_the_model(tmp_path, data):
    path = tmp_path / "model"
    io.save(IsolationForestDetector(n_estimators=5, random_state=0).fit(data), path)
    rng = np.random.default_rng(0)
    for _ in range(6):
        process = subprocess.Popen([sys.executable, "-c", _SAVE_LOOP, str(path)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        process.send_signal(signal.SIGKILL)
        process.wait()
        detector = io.load(path)
        assert detector.n_estimators in (5, 40)


def test_shapes_that_disagree_with_the_weights_are_refused_before_building(saved):
    _rewrite_config(saved, lambda c: c["params"].update(hidden_features=[4096, 4096]))
    with pytest.raises(ValueError, match=r"describes a flow whose .* has shape \(4096.*holds \(8"):
        io.load(saved)


def test_a_model_saved_for_cuda_loads_on_the_cpu(saved, data):
    _rewrite_config(saved, lambda c: c["params"].update(device="cuda"))
    detector = io.load(saved)
    assert str(detector.device_) == "cpu"
    assert np.isfinite(detector.score_samples(data[:5])).all()


def test_a_file_from_a_newer_flowad_is_refused(saved):
    _rewrite_config(saved, lambda c: c.update(format_version=model_files.FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="upgrade flowad"):
        io.load(saved)


def test_flowad_01_files_load_with_identical_scores():
    folder = __import__("pathlib").Path(__file__).parents[1] / "data" / "model_files_v1"
    expected = json.loads((folder / "expected.json").read_text())
    probe, series = np.asarray(expected["probe"]), np.asarray(expected["series"])
    for name, values in expected["expected"].items():
        detector = io.load(folder / name)
        if name == "WindowDetector":
            scores = detector.score_samples(series)
        elif getattr(detector, "feature_names_in_", None) is not None:
            scores = detector.score_samples(pd.DataFrame(probe, columns=list(detector.feature_names_in_)))
        else:
            scores = detector.score_samples(probe)
        # 0.2's one-class SVM scores per training row (0.1: libsvm's sum); the decisions are unchanged
        scale = len(detector._train_rows_) if name == "OneClassSVMDetector" else 1
        np.testing.assert_allclose(scores * scale, values["scores"], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(detector.offset_ * scale, values["offset"], rtol=1e-12, err_msg=name)
        assert detector.calibration_ is None
        with pytest.raises(ValueError, match="refit it to get p-values"):
            detector.p_values(probe if name != "WindowDetector" else series)


def test_every_class_in_the_map_is_where_the_map_says():
    for name in MODEL_CLASSES:
        assert model_class(name).__name__ == name
    with pytest.raises(ValueError, match="unknown model class"):
        model_class("Pickle")


@pytest.mark.parametrize("name", ["FlowDetector", "IsolationForestDetector", "LOFDetector", "AutoencoderDetector"])
def test_models_load_in_a_fresh_process(tmp_path, data, name):
    detector = model_class(name)(**({"max_epochs": 3} if name != "IsolationForestDetector" and name != "LOFDetector"
                                    else {})).fit(data)
    io.save(detector, tmp_path / "m")
    np.save(tmp_path / "x.npy", data[:7])
    code = ("import sys, numpy as np; from flowad.io import load; "
            "print(' '.join(repr(float(v)) for v in load(sys.argv[1]).score_samples(np.load(sys.argv[2]))))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m"), str(tmp_path / "x.npy")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal([float(v) for v in result.stdout.split()], detector.score_samples(data[:7]))
