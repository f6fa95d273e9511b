"""Gamma/hadron separation metrics of IACT analyses.

Labels: ``y`` 0 = gamma (the signal, "normal"), 1 = hadron (the background). Scores: *gammaness*,
higher = more gamma-like (a flow fitted to gammas: the log-likelihood). An event is kept as a gamma
when its gammaness is **strictly above** a cut.

- *gamma efficiency* ``eps_g``: share of gammas kept; *hadron acceptance* ``eps_h``: share of
  hadrons kept.
- ``gamma_efficiency_at_hadron_acceptance``: for each target acceptance ``a`` the cut is the
  ``floor(a * n_h) + 1``-th largest hadron gammaness, so exactly ``floor(a * n_h)`` hadrons are kept
  when there are no ties (never more than ``a * n_h``: the cut is conservative with ties).
- quality factor ``Q = eps_g / sqrt(eps_h)``: the gain in significance of a weak source over
  background-dominated counting (e.g. Fegan, J. Phys. G 23 (1997) 1013). Its maximum over cuts is
  taken over cuts that keep at least ``min_hadrons`` hadrons, otherwise it is ruled by one or two
  background events.
- a cut learned on *training* gammas (:func:`cut_from_training`, e.g. the one that keeps 90% of
  them, or a detector's own chi-square latent cut) is judged at its efficiencies on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flowad.evaluation.tabular_metrics import roc_auc

__all__ = [
    "DEFAULT_ACCEPTANCES",
    "SeparationMetrics",
    "cut_from_training",
    "efficiencies_at_cut",
    "evaluate_separation",
    "gamma_efficiency_at_hadron_acceptance",
    "max_quality_factor",
    "quality_factor",
]

#: Hadron acceptances at which gamma efficiencies are reported by default.
DEFAULT_ACCEPTANCES: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2)


def _check(y, gammaness) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array of 0 (gamma) / 1 (hadron), got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y must hold only 0 (gamma) and 1 (hadron)")
    scores = np.asarray(gammaness, dtype=np.float64)
    if scores.shape != labels.shape:
        raise ValueError(f"gammaness must have shape {labels.shape} like y, got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("gammaness contains NaN or infinite values")
    labels = labels.astype(np.int64)
    if labels.min() == labels.max():
        raise ValueError("y must contain both gammas (0) and hadrons (1)")
    return labels, scores


def _check_acceptances(acceptances) -> tuple[float, ...]:
    values = tuple(float(a) for a in acceptances)
    if not values or not all(0.0 < a < 1.0 for a in values):
        raise ValueError(f"acceptances must be shares in (0, 1), got {acceptances!r}")
    return values


def quality_factor(gamma_efficiency, hadron_acceptance):
    """``Q = eps_g / sqrt(eps_h)`` (``inf`` where ``eps_h == 0`` and ``eps_g > 0``, 0 where both are 0).

    Args:
        gamma_efficiency: Scalar or array of shares in [0, 1].
        hadron_acceptance: Scalar or array of the same shape.
    """
    g = np.asarray(gamma_efficiency, dtype=np.float64)
    h = np.asarray(hadron_acceptance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(h > 0, g / np.sqrt(np.where(h > 0, h, 1.0)), np.where(g > 0, np.inf, 0.0))
    return float(q) if q.ndim == 0 else q


def _cut_at_acceptance(hadron_scores: np.ndarray, acceptance: float) -> float:
    """Cut that keeps ``floor(acceptance * n_h)`` hadrons (fewer with ties); ``hadron_scores`` (n_h,)."""
    ordered = np.sort(hadron_scores)[::-1]
    k = int(np.floor(acceptance * len(ordered) + 1e-9))
    return float(ordered[k]) if k < len(ordered) else float(ordered[-1]) - 1.0


def efficiencies_at_cut(y, gammaness, cut: float) -> tuple[float, float]:
    """Gamma efficiency and hadron acceptance of the cut ``gammaness > cut``.

    Args:
        y: Shape ``(N,)``, 0 = gamma, 1 = hadron.
        gammaness: Shape ``(N,)``, higher = more gamma-like.
        cut: Events with ``gammaness > cut`` are kept as gammas.

    Returns:
        ``(eps_gamma, eps_hadron)``.
    """
    labels, scores = _check(y, gammaness)
    kept = scores > float(cut)
    return float(kept[labels == 0].mean()), float(kept[labels == 1].mean())


def gamma_efficiency_at_hadron_acceptance(
    y, gammaness, acceptances=DEFAULT_ACCEPTANCES
) -> dict[float, float]:
    """Gamma efficiency at fixed hadron acceptances (cut rule in the module docstring).

    Args:
        y: Shape ``(N,)``, 0 = gamma, 1 = hadron (both present).
        gammaness: Shape ``(N,)``, higher = more gamma-like.
        acceptances: Target hadron acceptances in (0, 1).

    Returns:
        Target acceptance -> gamma efficiency.
    """
    labels, scores = _check(y, gammaness)
    return {a: eff for a, (eff, _) in _at_acceptances(labels, scores, acceptances).items()}


def _at_acceptances(labels: np.ndarray, scores: np.ndarray, acceptances) -> dict[float, tuple[float, float]]:
    """Target acceptance -> (gamma efficiency, hadron acceptance reached) for checked inputs."""
    hadrons, gammas = scores[labels == 1], scores[labels == 0]
    out = {}
    for a in _check_acceptances(acceptances):
        cut = _cut_at_acceptance(hadrons, a)
        out[a] = (float((gammas > cut).mean()), float((hadrons > cut).mean()))
    return out


def max_quality_factor(y, gammaness, min_hadrons: int = 10) -> tuple[float, float, float]:
    """The largest quality factor over all cuts that keep at least ``min_hadrons`` hadrons.

    Args:
        y: Shape ``(N,)``, 0 = gamma, 1 = hadron.
        gammaness: Shape ``(N,)``, higher = more gamma-like.
        min_hadrons: Fewest hadrons a cut must keep (capped at the number of hadrons).

    Returns:
        ``(q_max, eps_gamma, eps_hadron)`` at the best cut.
    """
    labels, scores = _check(y, gammaness)
    if int(min_hadrons) != min_hadrons or min_hadrons < 1:
        raise ValueError(f"min_hadrons must be a positive integer, got {min_hadrons!r}")
    hadrons = np.sort(scores[labels == 1])[::-1]
    gammas = np.sort(scores[labels == 0])
    k = np.arange(min(int(min_hadrons), len(hadrons)), len(hadrons) + 1)
    # cut just below the k-th largest hadron score: keeps the k hadrons with score >= it (ties kept)
    cuts = np.nextafter(hadrons[k - 1], -np.inf)
    eps_h = (len(hadrons) - np.searchsorted(hadrons[::-1], cuts, side="right")) / len(hadrons)
    eps_g = (len(gammas) - np.searchsorted(gammas, cuts, side="right")) / len(gammas)
    q = quality_factor(eps_g, eps_h)
    best = int(np.argmax(q))
    return float(q[best]), float(eps_g[best]), float(eps_h[best])


def cut_from_training(training_gammaness, gamma_efficiency: float = 0.9) -> float:
    """Cut that keeps a share ``gamma_efficiency`` of training gammas.

    Args:
        training_gammaness: Gammaness of training gammas, shape ``(n,)``.
        gamma_efficiency: Share of them to keep, in (0, 1).

    Returns:
        The ``1 - gamma_efficiency`` quantile of ``training_gammaness`` (events strictly above are
        kept).
    """
    scores = np.asarray(training_gammaness, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError("training_gammaness must be a non-empty 1-D array of finite numbers")
    if not 0.0 < gamma_efficiency < 1.0:
        raise ValueError(f"gamma_efficiency must be in (0, 1), got {gamma_efficiency!r}")
    return float(np.quantile(scores, 1.0 - gamma_efficiency))


@dataclass
class SeparationMetrics:
    """Gamma/hadron separation of one model on one labelled test set.

    Attributes:
        roc_auc: Area under the ROC curve (hadrons as positives of ``-gammaness``).
        gamma_efficiency: Target hadron acceptance -> gamma efficiency.
        quality_factor: Target hadron acceptance -> ``Q`` there.
        q_max: Largest ``Q`` over cuts keeping at least ``min_hadrons`` hadrons, with its
            ``q_max_gamma_efficiency`` and ``q_max_hadron_acceptance``.
        cut: The cut learned on training data (``None`` when not given), with the efficiencies and
            ``Q`` it reaches on this set.
        n_gamma, n_hadron: Events of each class scored.
        n_invalid_gamma, n_invalid_hadron: Events left out (no valid image parameters); they are
            not in the efficiencies, which are relative to the valid events.
    """

    roc_auc: float
    gamma_efficiency: dict[float, float]
    quality_factor: dict[float, float]
    q_max: float
    q_max_gamma_efficiency: float
    q_max_hadron_acceptance: float
    n_gamma: int
    n_hadron: int
    cut: float | None = None
    cut_gamma_efficiency: float | None = None
    cut_hadron_acceptance: float | None = None
    cut_quality_factor: float | None = None
    n_invalid_gamma: int = 0
    n_invalid_hadron: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | int | None]:
        """Flat dictionary for tables and JSON: ``gamma_eff_at_<p>pct`` and ``q_at_<p>pct`` per
        acceptance ``p`` (in percent), then the scalar fields."""
        out: dict[str, float | int | None] = {"roc_auc": self.roc_auc}
        for a, eff in self.gamma_efficiency.items():
            out[f"gamma_eff_at_{100 * a:g}pct"] = eff
        for a, q in self.quality_factor.items():
            out[f"q_at_{100 * a:g}pct"] = q
        out.update(
            q_max=self.q_max,
            q_max_gamma_efficiency=self.q_max_gamma_efficiency,
            q_max_hadron_acceptance=self.q_max_hadron_acceptance,
            cut=self.cut,
            cut_gamma_efficiency=self.cut_gamma_efficiency,
            cut_hadron_acceptance=self.cut_hadron_acceptance,
            cut_quality_factor=self.cut_quality_factor,
            n_gamma=self.n_gamma,
            n_hadron=self.n_hadron,
            n_invalid_gamma=self.n_invalid_gamma,
            n_invalid_hadron=self.n_invalid_hadron,
        )
        out.update(self.extra)
        return out


def evaluate_separation(
    y,
    gammaness,
    cut: float | None = None,
    acceptances=DEFAULT_ACCEPTANCES,
    valid=None,
    min_hadrons: int = 10,
) -> SeparationMetrics:
    """All separation metrics of one gammaness on one labelled set.

    Args:
        y: Shape ``(N,)``, 0 = gamma, 1 = hadron.
        gammaness: Shape ``(N,)``, higher = more gamma-like (values of invalid events are ignored).
        cut: A cut learned on training data (events with ``gammaness > cut`` are kept), or None.
        acceptances: Target hadron acceptances for the efficiency table.
        valid: Optional boolean mask ``(N,)``; False rows (no valid image parameters) are counted
            per class and left out of every metric.
        min_hadrons: See :func:`max_quality_factor`.
    """
    labels = np.asarray(y)
    keep = np.ones(labels.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if keep.shape != labels.shape:
        raise ValueError(f"valid must have shape {labels.shape} like y, got {keep.shape}")
    scores = np.asarray(gammaness, dtype=np.float64)
    if scores.shape != labels.shape:
        raise ValueError(f"gammaness must have shape {labels.shape} like y, got {scores.shape}")
    labels, scores = _check(labels[keep], scores[keep])
    reached = _at_acceptances(labels, scores, acceptances)
    n_h = int(labels.sum())
    q_max, q_g, q_h = max_quality_factor(labels, scores, min_hadrons)
    invalid = np.asarray(y)[~keep]
    metrics = SeparationMetrics(
        roc_auc=roc_auc(labels, -scores),
        gamma_efficiency={a: eff for a, (eff, _) in reached.items()},
        quality_factor={a: quality_factor(eff, acc) for a, (eff, acc) in reached.items()},
        q_max=q_max,
        q_max_gamma_efficiency=q_g,
        q_max_hadron_acceptance=q_h,
        n_gamma=int((labels == 0).sum()),
        n_hadron=n_h,
        n_invalid_gamma=int((invalid == 0).sum()),
        n_invalid_hadron=int((invalid != 0).sum()),
    )
    if cut is not None:
        eps_g, eps_h = efficiencies_at_cut(labels, scores, cut)
        metrics.cut = float(cut)
        metrics.cut_gamma_efficiency, metrics.cut_hadron_acceptance = eps_g, eps_h
        metrics.cut_quality_factor = quality_factor(eps_g, eps_h)
    return metrics
