"""The divergence guard's test: no NaN or inf score after training on any small ADBench set."""

import numpy as np
import pytest

from flowad import FlowDetector, FlowOptions
from flowad.datasets import adbench_root, load_adbench, oneclass_split

SMALL_SETS = sorted(
    p.stem for p in adbench_root("classical").glob("*.npz") if np.load(p)["y"].shape[0] < 20_000
)


def test_the_suite_is_there():
    assert len(SMALL_SETS) >= 30


@pytest.mark.parametrize("name", SMALL_SETS)
def test_scores_are_finite_after_training(name):
    X, y = load_adbench(name)
    X_train, X_test, _ = oneclass_split(X, y, random_state=0)
    # fast, deliberately aggressive: few epochs at a high learning rate
    detector = FlowDetector("maf", transforms=2, hidden_features=(32, 32), max_epochs=3,
                            learning_rate=1e-2, options=FlowOptions(batch_size=512), random_state=0).fit(X_train)
    scores = detector.score_samples(X_test)
    assert scores.shape == (len(X_test),)
    # non-finite model outputs are mapped to the lowest float; none may have been
    assert (scores > np.finfo(np.float64).min).all(), f"{name}: the model produced NaN/inf scores"
    assert np.isfinite(scores).all()
    assert np.isfinite(detector.offset_)
