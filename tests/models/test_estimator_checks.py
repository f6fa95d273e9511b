"""Every detector through scikit-learn's estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from flowad.models import DETECTORS
from tests.conftest import FAST

# Checks a detector is expected to fail, with the reason.
OUT_OF_FOLD_THRESHOLD = (
    "offset_ is calibrated on scores of rows the scoring model was not fitted to (out-of-fold or held-out, "
    "flowad.core.calibration), because scores of training rows are optimistic; so the share of the *training* "
    "rows predicted as outliers is not exactly the contamination (the share of new normal rows is)"
)
OUT_OF_FOLD = {"check_outliers_train": OUT_OF_FOLD_THRESHOLD, "check_outliers_fit_predict": OUT_OF_FOLD_THRESHOLD}
EXPECTED_FAILURES = {name: OUT_OF_FOLD for name in DETECTORS}


def _fast(name: str):
    """A detector by registry name, in a fast and seeded configuration."""
    detector = DETECTORS[name](**FAST.get(name, {}))
    if "random_state" in detector.get_params():
        detector.set_params(random_state=0)
    return detector


ESTIMATORS = {name: _fast(name) for name in DETECTORS}
_NAMES = {id(estimator): name for name, estimator in ESTIMATORS.items()}


@parametrize_with_checks(
    list(ESTIMATORS.values()),
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES.get(_NAMES.get(id(estimator)), {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
