"""The vehicle-sensor generator's labels cover exactly the injected faults; the real series load."""

import importlib.util

import numpy as np
import pytest

from flowad.datasets import FAULT_KINDS, VEHICLE_CHANNELS, load_series, vehicle_sensors


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_cover_exactly_the_injected_faults(seed):
    drive = vehicle_sensors(6000, n_per_kind=3, random_state=seed)
    clean = vehicle_sensors(6000, faults=(), random_state=seed)
    assert drive.values.shape == (6000, 5) and drive.channels == VEHICLE_CHANNELS
    assert sorted(f.kind for f in drive.faults) == sorted(FAULT_KINDS * 3)
    covered = np.zeros(6000, bool)
    for fault in drive.faults:
        assert not covered[fault.start : fault.stop].any()  # no overlaps
        covered[fault.start : fault.stop] = True
        assert (drive.kinds[fault.start : fault.stop] == fault.kind).all()
        changed = np.flatnonzero((drive.values != clean.values)[fault.start : fault.stop].any(axis=0))
        assert [VEHICLE_CHANNELS[c] for c in changed] == [fault.channel]  # only the fault's channel
    np.testing.assert_array_equal(drive.labels, covered.astype(int))
    # every labelled point was changed by its fault, and nothing else was
    np.testing.assert_array_equal((drive.values != clean.values).any(axis=1), covered)
    assert (drive.kinds[~covered] == "").all()


def test_physical_coupling_and_fault_kinds():
    drive = vehicle_sensors(5000, faults=("coupling", "stuck"), n_per_kind=2, random_state=3)
    clean = vehicle_sensors(5000, faults=(), random_state=3).values
    speed, rpm = clean[:, 0], clean[:, 1]
    assert np.corrcoef(speed, rpm)[0, 1] > 0.85 and rpm.min() > 650  # idle at 800 rpm, noise 20
    for fault in drive.faults:
        segment = drive.values[fault.start : fault.stop, VEHICLE_CHANNELS.index(fault.channel)]
        if fault.kind == "stuck":
            assert np.ptp(segment) == 0.0
        else:  # the RPM of another stretch, with a similar level
            assert fault.channel == "rpm"
            original = rpm[fault.start : fault.stop]
            assert abs(segment.mean() - original.mean()) <= 0.1 * original.mean()
            assert any(np.array_equal(segment, rpm[s : s + len(segment)]) for s in range(len(rpm) - len(segment)))


def test_generator_bad_input():
    with pytest.raises(ValueError, match="faults"):
        vehicle_sensors(1000, faults=("rust",))
    with pytest.raises(ValueError, match="n_points"):
        vehicle_sensors(1)
    with pytest.raises(ValueError, match="fault_length"):
        vehicle_sensors(1000, fault_length=(5, 2))
    with pytest.raises(ValueError, match="too short"):
        vehicle_sensors(300, faults=("drift",), n_per_kind=5)


@pytest.mark.skipif(importlib.util.find_spec("aeon") is None, reason="needs aeon (pip install --no-deps aeon)")
def test_ucr135_split_and_anomaly():
    data = load_series("ucr135")
    assert data.train.shape == (1200, 1) and data.test.shape == (6301, 1)
    anomalous = np.flatnonzero(data.test_labels) + data.test_start
    np.testing.assert_array_equal(anomalous, np.arange(4187, 4199))  # the archive's name: ..._1200_4187_4199


@pytest.mark.skipif(importlib.util.find_spec("sktime") is None, reason="needs sktime (pip install --no-deps sktime)")
def test_sktime_series():
    yahoo, ecg = load_series("yahoo"), load_series("mitdb")
    assert yahoo.train.shape == (400, 1) and yahoo.test_labels.sum() == 7
    assert ecg.train.shape == (3000, 1) and ecg.test_labels.sum() == 352
    with pytest.raises(ValueError, match="name"):
        load_series("nab")
