"""Failing safely: fuzzed input, training that diverges on purpose, interrupted saves, edited files."""

import json
import warnings

import numpy as np
import pytest

from flowad import io, make_detector
from flowad.core import model_files
from flowad.models import DETECTORS
from tests.conftest import FAST

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

#: One epoch is enough to reach every code path of fit and score.
QUICK = {name: {**FAST.get(name, {}), **({"max_epochs": 1} if "max_epochs" in FAST.get(name, {}) else {})}
         for name in DETECTORS}
FUZZ = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
wild_floats = st.one_of(floats, st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e300, -1e300, 5e-324, 1.7e308]))
arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=12), elements=wild_floats)
other_inputs = st.one_of(
    st.none(), st.text(max_size=5), st.integers(), st.lists(st.one_of(st.integers(), st.text(max_size=2)), max_size=4),
    hnp.arrays(st.sampled_from([np.int8, np.uint8, np.bool_, np.complex128, np.object_]),
               hnp.array_shapes(min_dims=1, max_dims=2, max_side=6)),
)
anything = st.one_of(arrays, other_inputs)


def _clear_error(call) -> None:
    """Run ``call``: it may succeed or raise ValueError/TypeError; nothing else is acceptable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call()
        except (ValueError, TypeError):
            return None


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).normal(size=(60, 3))
    return {name: make_detector(name, **QUICK[name]) for name in DETECTORS}, X


@pytest.mark.parametrize("name", list(DETECTORS))
def test_fuzzed_fit_input_fails_clearly_or_scores_finitely(name):
    @FUZZ
    @given(X=anything)
    def run(X):
        detector = make_detector(name, **QUICK[name])
        if _clear_error(lambda: detector.fit(X)) is not None:
            scores = detector.score_samples(np.asarray(X, dtype=np.float64))
            assert np.isfinite(scores).all()

    run()


@pytest.mark.parametrize("name", list(DETECTORS))
def test_fuzzed_score_input_fails_clearly_or_scores_finitely(fitted, name):
    detectors, X = fitted
    detector = detectors[name].fit(X)

    @FUZZ
    @given(Z=anything)
    def run(Z):
        for method in ("score_samples", "decision_function", "predict"):
            out = _clear_error(lambda m=method: getattr(detector, m)(Z))
            if out is not None:
                assert np.isfinite(out).all()

    run()


def test_fuzzed_image_input_fails_clearly():
    from flowad.models import ConvAutoencoderDetector

    rng = np.random.default_rng(0)
    detector = ConvAutoencoderDetector(base_channels=4, latent_channels=2, max_epochs=1, device="cpu")
    detector.fit(rng.integers(0, 255, (6, 16, 16)).astype(np.uint8))

    @FUZZ
    @given(images=st.one_of(anything, hnp.arrays(np.float64, st.sampled_from([(2, 16, 16), (1, 16, 16, 3),
                                                                                (2, 16, 16, 1)]), elements=floats)))
    def run(images):
        for method in ("score_samples", "anomaly_map", "predict"):
            out = _clear_error(lambda m=method: getattr(detector, m)(images))
            if out is not None:
                assert np.isfinite(out).all()
        fresh = ConvAutoencoderDetector(base_channels=4, latent_channels=2, max_epochs=1, device="cpu")
        if _clear_error(lambda: fresh.fit(images)) is not None:
            assert np.isfinite(fresh.offset_)

    run()


def _hostile_sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(120, 3))
    duplicated = np.vstack([np.tile(normal[:1], (110, 1)), normal[:10]])
    constant = np.column_stack([normal[:, 0], np.full(120, 7.0), np.full(120, -1e6)])
    all_constant = np.tile([[1.0, 2.0, 3.0]], (120, 1))
    outliers = normal.copy()
    outliers[:3] = [[1e150, -1e150, 1e12], [-1e200, 0, 0], [0, 1e300, 0]]
    return {"duplicated": duplicated, "constant_columns": constant, "all_constant": all_constant,
            "extreme_outliers": outliers}


@pytest.mark.parametrize("name", ["maf", "realnvp", "nsf", "ae"])
@pytest.mark.parametrize("case", ["huge_learning_rate", *_hostile_sets()])
def test_training_that_diverges_still_gives_finite_scores(name, case):
    sets = _hostile_sets()
    X = np.random.default_rng(1).normal(size=(120, 3)) if case == "huge_learning_rate" else sets[case]
    params = {**FAST[name], "max_epochs": 4, "random_state": 0}
    if case == "huge_learning_rate":
        params["learning_rate"] = 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector = make_detector(name, **params).fit(X)
    probe = np.vstack([X, np.random.default_rng(2).normal(size=(20, 3)) * 1e3, [[1e300, -1e300, 0.0]]])
    for scores in (detector.score_samples(probe), detector.decision_function(probe)):
        assert np.isfinite(scores).all()
    assert np.isfinite(detector.offset_)
    assert set(np.unique(detector.predict(probe))) <= {-1, 1}


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model"
    X = np.random.default_rng(0).normal(size=(80, 3))
    io.save(make_detector("maf", random_state=0, **QUICK["maf"]).fit(X), path)
    return path, X


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, MemoryError, OSError])
def test_save_interrupted_while_writing_leaves_the_old_model(saved, monkeypatch, interrupt):
    path, X = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    real_write = model_files.write_new_file
    written = []

    def dies_midway(target, data):
        if written:
            raise interrupt("interrupted (simulated)")  # one temporary file written, then the interruption
        written.append(target)
        real_write(target, data[: len(data) // 2])

    monkeypatch.setattr(model_files, "write_new_file", dies_midway)
    with pytest.raises(interrupt):
        io.save(make_detector("maf", random_state=1, **QUICK["maf"]).fit(X * 3), path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    io.load(path).score_samples(X)


def _rewrite(path, edit) -> None:
    """Hand-edit config.json and recompute its checksum (as someone who knows the format would)."""
    config = json.loads((path / io.CONFIG_FILE).read_text())
    edit(config)
    config["config_sha256"] = io.config_digest(config)
    (path / io.CONFIG_FILE).write_text(json.dumps(config))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.update(format_version=99), "model format 99.*upgrade flowad"),
        (lambda c: c.update(format_version="2"), "unknown model format"),
        (lambda c: c.update({"class": "PickledThing"}), "unknown model class"),
        (lambda c: c["params"].update(transforms=7), "do not fit"),
        (lambda c: c["params"].update(hidden_features=[3]), "do not fit"),
        (lambda c: c["params"].update(flow="glow"), "do not fit|flow"),
        (lambda c: c["params"].update(surprise=1), "do not fit"),
        (lambda c: c["state"].pop("offset_"), "do not fit"),
        (lambda c: c.update(weights_sha256="0" * 64), "corrupted"),
    ],
    ids=["format", "version", "class", "depth", "width", "flow", "param", "state", "weights_sum"],
)
def test_hand_edited_model_files_are_refused(saved, edit, match):
    path, _ = saved
    _rewrite(path, edit)
    with pytest.raises(ValueError, match=match):
        io.load(path)
