"""A multivariate vehicle-sensor generator with injected faults and exact labels.

Five channels at 1 Hz (:data:`VEHICLE_CHANNELS`), physically coupled:

- a driver follows a target speed that changes between stops, town (20-50 km/h), road (60-90)
  and motorway (90-130) segments; a proportional controller sets the **throttle** (%) from the
  speed error plus rolling and air drag; below the drag it brakes;
- **acceleration** (m/s^2) = throttle share x 3 m/s^2 - drag - braking, with a slowly wandering
  road grade; **speed** (km/h) integrates it;
- **RPM** = speed x the ratio of the gear, chosen from speed (6 gears; shifts at 15, 30, 50, 70,
  90 km/h), and never below 800 (idle);
- **engine temperature** (deg C) relaxes with a 60 s time constant towards a level that rises with
  throttle and RPM and falls with the air stream at speed.

Every channel carries Gaussian measurement noise. Faults (:data:`FAULT_KINDS`) are injected into the
finished series, never overlapping, each at least ``min_gap`` points from the next:

- ``"stuck"``: a sensor (speed, RPM, throttle or temperature) repeats its last reading;
- ``"drift"``: a sensor's offset grows linearly to 4-6 standard deviations of that channel;
- ``"spike"``: 1-3 points jump by 5-8 standard deviations;
- ``"coupling"``: RPM no longer follows speed: the RPM trace of another stretch of the drive with a
  similar mean RPM replaces it, so RPM alone still looks normal, only its relation to speed,
  throttle and acceleration is broken.

The signal and the faults use separate random streams, so ``vehicle_sensors(n, faults=(),
random_state=s)`` is the clean series of ``vehicle_sensors(n, faults=..., random_state=s)`` and the
labels are exactly the points that a fault changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FAULT_KINDS", "VEHICLE_CHANNELS", "Fault", "VehicleSeries", "vehicle_sensors"]

VEHICLE_CHANNELS: tuple[str, ...] = ("speed", "rpm", "throttle", "engine_temp", "acceleration")
FAULT_KINDS: tuple[str, ...] = ("stuck", "drift", "spike", "coupling")

_GEAR_SHIFTS_KMH = np.array([15.0, 30.0, 50.0, 70.0, 90.0])
_RPM_PER_KMH = np.array([120.0, 70.0, 48.0, 37.0, 30.0, 25.0])
_NOISE = np.array([0.3, 20.0, 0.3, 0.1, 0.05])  # per channel, in its units
_STUCK_CHANNELS = (0, 1, 2, 3)
_REGIMES = ((0.0, 0.0), (20.0, 50.0), (60.0, 90.0), (90.0, 130.0))


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` on channel ``channel`` at points ``start .. stop - 1``."""

    kind: str
    channel: str
    start: int
    stop: int


@dataclass
class VehicleSeries:
    """A generated drive.

    Attributes:
        values: Shape ``(T, 5)``, channels :data:`VEHICLE_CHANNELS`.
        labels: Shape ``(T,)`` int64, 1 where a fault changed the reading.
        kinds: Shape ``(T,)`` str, the fault kind per point (``""`` for normal points).
        channels: Channel names.
        faults: The injected faults in time order.
    """

    values: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    channels: tuple[str, ...] = VEHICLE_CHANNELS
    faults: list[Fault] = field(default_factory=list)


def _drive(n: int, rng: np.random.Generator) -> np.ndarray:
    """The clean, noise-free-physics drive with measurement noise, shape ``(n, 5)``."""
    out = np.empty((n, 5))
    v, temp, grade, target, left = 0.0, 88.0, 0.0, 0.0, 0
    for t in range(n):
        if left <= 0:  # next segment of the drive
            low, high = _REGIMES[rng.choice(4, p=(0.15, 0.35, 0.3, 0.2))]
            target, left = rng.uniform(low, high) / 3.6, int(rng.integers(30, 300))
        left -= 1
        grade = 0.995 * grade + rng.normal(0.0, 0.003)
        drag = 0.1 + 0.0004 * v * v + grade
        wanted = float(np.clip(0.5 * (target - v), -3.0, 2.0))
        throttle = float(np.clip(100.0 * (wanted + drag) / 3.0, 0.0, 100.0))
        brake = max(0.0, -(wanted + drag)) if throttle == 0.0 else 0.0
        accel = throttle / 100.0 * 3.0 - drag - brake + rng.normal(0.0, 0.05)
        new_v = max(0.0, v + accel)
        accel, v = new_v - v, new_v
        kmh = 3.6 * v
        rpm = max(800.0, kmh * _RPM_PER_KMH[int(np.searchsorted(_GEAR_SHIFTS_KMH, kmh))])
        level = 85.0 + 10.0 * throttle / 100.0 + 3.0 * rpm / 3000.0 - 4.0 * kmh / 130.0
        temp += (level - temp) / 60.0 + rng.normal(0.0, 0.02)
        out[t] = (kmh, rpm, throttle, temp, accel)
    return out + rng.normal(size=out.shape) * _NOISE


def _place(n: int, lengths: list[int], min_gap: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Non-overlapping ``(start, stop)`` ranges of the given lengths (in that order), ``min_gap`` apart."""
    for _ in range(200):
        spans: list[tuple[int, int]] = []
        for length in lengths:
            for _ in range(200):
                start = int(rng.integers(min_gap, max(min_gap + 1, n - length - min_gap)))
                stop = start + length
                if all(stop + min_gap <= a or b + min_gap <= start for a, b in spans):
                    spans.append((start, stop))
                    break
        if len(spans) == len(lengths):
            return spans
    raise ValueError(f"n_points={n} is too short for {len(lengths)} faults of lengths {lengths} with gaps {min_gap}")


def _coupling_source(rpm: np.ndarray, start: int, stop: int, min_gap: int, rng: np.random.Generator) -> int:
    """Start of another stretch whose RPM has a similar mean but differs from the original's."""
    length, n = stop - start, len(rpm)
    original = rpm[start:stop]
    best, best_gap = -1, -np.inf
    for _ in range(400):
        src = int(rng.integers(0, n - length))
        if abs(src - start) < length + min_gap:
            continue
        copy = rpm[src : src + length]
        if abs(copy.mean() - original.mean()) > 0.1 * original.mean():
            continue
        gap = float(np.abs(copy - original).mean())
        if gap > 250.0:
            return src
        if gap > best_gap:
            best, best_gap = src, gap
    if best < 0:
        raise ValueError("no stretch with a similar RPM level for a coupling fault; use a longer n_points")
    return best


def vehicle_sensors(n_points: int = 10_000, faults: Sequence[str] = FAULT_KINDS, *, n_per_kind: int = 4,
                    fault_length: tuple[int, int] = (40, 160), min_gap: int = 100,
                    random_state: int | np.random.Generator | None = None) -> VehicleSeries:
    """Generate a drive with injected faults (see the module docstring).

    Args:
        n_points: Length ``T`` of the series (1 point per second).
        faults: Fault kinds to inject (each of :data:`FAULT_KINDS`); ``()`` for a clean series.
        n_per_kind: Faults of each kind.
        fault_length: Inclusive range of fault lengths in points (spikes: 1-3 points).
        min_gap: Fewest normal points before, between and after faults.
        random_state: Seed or generator.

    Returns:
        A :class:`VehicleSeries`.
    """
    if int(n_points) != n_points or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}")
    unknown = [kind for kind in faults if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"faults must be among {FAULT_KINDS}, got {unknown}")
    if int(n_per_kind) != n_per_kind or n_per_kind < 0:
        raise ValueError(f"n_per_kind must be a non-negative integer, got {n_per_kind!r}")
    low, high = fault_length
    if not 1 <= low <= high:
        raise ValueError(f"fault_length must be (low, high) with 1 <= low <= high, got {fault_length!r}")
    if min_gap < 1:
        raise ValueError(f"min_gap must be at least 1, got {min_gap!r}")
    signal_rng, fault_rng = np.random.default_rng(random_state).spawn(2)
    values = _drive(int(n_points), signal_rng)
    clean = values.copy()
    std = clean.std(axis=0)
    kinds_list = [kind for kind in dict.fromkeys(faults) for _ in range(int(n_per_kind))]
    lengths = [int(fault_rng.integers(1, 4)) if kind == "spike" else int(fault_rng.integers(low, high + 1))
               for kind in kinds_list]
    order = fault_rng.permutation(len(kinds_list))
    spans = _place(int(n_points), [lengths[i] for i in order], min_gap, fault_rng)
    labels = np.zeros(int(n_points), dtype=np.int64)
    kinds = np.full(int(n_points), "", dtype="<U8")
    injected = []
    for (start, stop), i in zip(spans, order, strict=True):
        kind = kinds_list[i]
        if kind == "coupling":
            channel = 1
            src = _coupling_source(clean[:, 1], start, stop, min_gap, fault_rng)
            values[start:stop, 1] = clean[src : src + stop - start, 1]
        else:
            channel = int(fault_rng.choice(_STUCK_CHANNELS)) if kind == "stuck" else int(fault_rng.integers(5))
            sign = fault_rng.choice((-1.0, 1.0))
            if kind == "stuck":
                values[start:stop, channel] = values[start - 1, channel]
            elif kind == "drift":
                size = sign * fault_rng.uniform(4.0, 6.0) * std[channel]
                values[start:stop, channel] += size * np.arange(1, stop - start + 1) / (stop - start)
            else:
                values[start:stop, channel] += sign * fault_rng.uniform(5.0, 8.0) * std[channel]
        labels[start:stop] = 1
        kinds[start:stop] = kind
        injected.append(Fault(kind, VEHICLE_CHANNELS[channel], start, stop))
    return VehicleSeries(values, labels, kinds, VEHICLE_CHANNELS, sorted(injected, key=lambda f: f.start))
