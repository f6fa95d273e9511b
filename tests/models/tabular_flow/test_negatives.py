"""Two-class training: normal rows up, negatives down (Chiu & Lai's bounded loss)."""

import numpy as np
import pytest
import torch

from flowad.core.two_class import check_negative_labels, two_class_losses
from flowad.evaluation.tabular_metrics import roc_auc
from flowad.models import FlowDetector, TwoClassFlowDetector


def test_loss_weights_and_bounds_by_hand():
    log_prob = torch.tensor([-1.0, -3.0, -2.0, -5.0, 0.5])
    labels = torch.tensor([0, 0, 1, 1, 1])
    losses = two_class_losses(log_prob, labels)
    # normals: NLL * B / n_normal; negatives above the least likely normal (-3): log p * B / n_negative
    expected = torch.tensor([1.0 * 5 / 2, 3.0 * 5 / 2, -2.0 * 5 / 3, 0.0, 0.5 * 5 / 3])
    torch.testing.assert_close(losses, expected)
    assert losses.mean() == pytest.approx(2.0 + (-2.0 + 0.5) / 3)  # L_B - L_R, L_R = mean NLL of counted negatives
    floored = two_class_losses(log_prob, labels, floor=0.0, weight=0.5)
    torch.testing.assert_close(floored[2:], torch.tensor([0.0, 0.0, 0.5 * 0.5 * 5 / 3]))


def test_loss_gradient_does_not_reach_the_bound():
    log_prob = torch.tensor([-1.0, -3.0, -2.0], requires_grad=True)
    two_class_losses(log_prob, torch.tensor([0, 0, 1])).sum().backward()
    assert log_prob.grad[1] == pytest.approx(-1.5)  # only its own NLL term, not the bound


@pytest.mark.parametrize(
    "y, match",
    [
        (None, "y is required"),
        (np.zeros(5), r"shape \(6,\)"),
        (np.array([0, 0, 1, 2, 0, 0]), "only 0"),
        (np.array([1, 1, 1, 1, 1, 0]), "at least 2"),
    ],
)
def test_bad_labels_are_refused(y, match):
    with pytest.raises(ValueError, match=match):
        check_negative_labels(y, 6)


def test_flow_learns_a_hole_where_negatives_sit():
    """Negatives at the normal density's mode look *most* normal to a one-class flow; two-class
    training must carve them out."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(1500, 2))
    negative = rng.normal(scale=0.25, size=(300, 2))
    X = np.vstack([normal, negative])
    y = np.r_[np.zeros(1500), np.ones(300)]
    test = np.vstack([rng.normal(size=(400, 2)), rng.normal(scale=0.25, size=(100, 2))])
    y_test = np.r_[np.zeros(400), np.ones(100)]
    params = {"transforms": 3, "hidden_features": (32, 32), "max_epochs": 150, "random_state": 0}
    one_class = FlowDetector(**params).fit(normal)
    two_class = TwoClassFlowDetector(negatives="labels", **params).fit(X, y)
    assert roc_auc(y_test, -one_class.score_samples(test)) < 0.3
    assert roc_auc(y_test, -two_class.score_samples(test)) > 0.8
    # the threshold comes from held-out *normal* rows: about 1% of new normal rows flagged
    assert (two_class.predict(test[:400]) == -1).mean() < 0.1


def test_labels_are_ignored_unless_asked_for():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = rng.integers(0, 3, 200)  # anything, as scikit-learn's checks pass
    params = {"transforms": 1, "hidden_features": (8,), "max_epochs": 3, "random_state": 0}
    np.testing.assert_array_equal(FlowDetector(**params).fit(X, y).score_samples(X),
                                  FlowDetector(**params).fit(X).score_samples(X))


def test_synthetic_negatives_sharpen_the_boundary():
    """The flow draws its own negatives from its latent tail; training against them lowers the
    likelihood out there (rows far from the data) while normal rows keep theirs."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1500, 2))
    params = {"transforms": 3, "hidden_features": (32, 32), "max_epochs": 60, "random_state": 0}
    one_class = FlowDetector(**params).fit(X)
    synthetic = TwoClassFlowDetector(negatives="synthetic", **params).fit(X, y=rng.integers(0, 3, len(X)))  # y ignored
    assert synthetic.n_synthetic_negatives_ > 100
    far = rng.normal(size=(400, 2)) * 4.0
    far = far[np.linalg.norm(far, axis=1) > 4.0]
    normal = rng.normal(size=(400, 2))
    assert np.median(synthetic.score_samples(far)) < np.median(one_class.score_samples(far))
    assert np.median(synthetic.score_samples(normal)) > np.median(one_class.score_samples(normal)) - 0.5
    both = np.vstack([normal, far])
    y = np.r_[np.zeros(len(normal)), np.ones(len(far))]
    assert roc_auc(y, -synthetic.score_samples(both)) > 0.95
