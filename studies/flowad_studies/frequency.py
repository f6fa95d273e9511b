"""Study 3, frequency bias: sinusoid images with low (1-5 cycles) or high (11-15 cycles) spatial
frequency and three intensities (amplitudes); Glow NLL and dense / convolutional autoencoder
reconstruction error per frequency and per intensity, each model trained on one band in turn.

The claim (the Delft thesis, as summarised in issue 9; the mechanism in Kirichenko et al., "Why
Normalizing Flows Fail to Detect Out-of-Distribution Data", arXiv:2006.08545, and Schirrmeister et
al., "Understanding Anomaly Detection with Deep Invertible Networks through Hierarchies of
Distributions and Features", arXiv:2006.10848: likelihoods are dominated by local smoothness; for
autoencoders the spectral bias of Rahaman et al., arXiv:1806.08734): the scores follow frequency
content, not novelty: smooth, low-frequency images look normal even to models trained only on high
frequencies, and intensity (contrast) shifts the scores as well.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr

from flowad.models.conv_autoencoder.estimator import ConvAutoencoderDetector
from flowad.models.glow_density.estimator import GlowConfig, GlowDensity
from flowad.models.tabular_autoencoder.estimator import AutoencoderDetector
from flowad_studies.page import StudyPage, auc, md_table, save_figure, verdict
from flowad_studies.study_data import HIGH_FREQUENCIES, INTENSITIES, LOW_FREQUENCIES, SinusoidSet, sinusoid_set

__all__ = ["FrequencySettings", "run_frequency"]

logger = logging.getLogger(__name__)

BANDS = {"low": LOW_FREQUENCIES, "high": HIGH_FREQUENCIES}
#: What each model is trained on in turn: one band, the other, or both (the cleanest test of a bias).
TRAIN_SETS = {**BANDS, "both": LOW_FREQUENCIES + HIGH_FREQUENCIES}
_AUC = "ROC-AUC high band scored above low"
MODELS = ("Glow NLL (bits/dim)", "dense AE error", "conv AE error")


@dataclass
class FrequencySettings:
    """Set sizes and models of the study."""

    n_train: int = 1500
    n_test: int = 600
    size: int = 32
    glow: GlowConfig = field(default_factory=lambda: GlowConfig(max_epochs=15, patience=4))
    ae_epochs: int = 30

    @classmethod
    def quick(cls) -> FrequencySettings:
        return cls(n_train=45, n_test=30, glow=GlowConfig(steps=1, hidden_channels=8, max_epochs=1), ae_epochs=1)


def _scores(train: np.ndarray, test: np.ndarray, s: FrequencySettings, seed: int) -> dict[str, np.ndarray]:
    """Anomaly scores of ``test`` (higher = more anomalous) from the three models fitted to ``train``."""
    glow = GlowDensity(s.glow, seed).fit(train)
    flat_train, flat_test = train.reshape(len(train), -1) / 255.0, test.reshape(len(test), -1) / 255.0
    dense = AutoencoderDetector(hidden_features=(256, 64), bottleneck=16, max_epochs=s.ae_epochs, patience=5,
                                device="cpu", random_state=seed).fit(flat_train)
    conv = ConvAutoencoderDetector(smooth_sigma=0.0, max_epochs=s.ae_epochs, batch_size=64, patience=5,
                                   device="cpu", random_state=seed).fit(train)
    return {MODELS[0]: glow.bits_per_dim(test), MODELS[1]: -dense.score_samples(flat_test),
            MODELS[2]: conv.anomaly_map(test).mean((1, 2))}


def run_frequency(out_dir: str | Path = "docs/results/studies", quick: bool = False, random_state: int = 0,
                  settings: FrequencySettings | None = None) -> dict:
    """Run the study; writes ``frequency.md``, ``.json`` and ``frequency_scores.png``.

    Returns:
        Per training set (low band, high band, both) and model: the ROC-AUC of high-band test images
        scored as more anomalous than low-band ones, the mean score per band, per test frequency and
        per intensity, and the Spearman correlation of score and intensity on the training set's bands.
    """
    start = time.perf_counter()
    s = settings or (FrequencySettings.quick() if quick else FrequencySettings())
    rng = np.random.default_rng(random_state)
    tests = {band: sinusoid_set(s.n_test, freqs, INTENSITIES, s.size, rng) for band, freqs in BANDS.items()}
    test = SinusoidSet(*(np.concatenate([getattr(tests[b], k) for b in BANDS])
                         for k in ("images", "frequency", "intensity", "vertical")))
    low = np.isin(test.frequency, LOW_FREQUENCIES)
    results, rows = {}, []
    for name, freqs in TRAIN_SETS.items():
        train = sinusoid_set(s.n_train, freqs, INTENSITIES, s.size, rng).images
        scores = _scores(train, test.images, s, random_state)
        inside = np.isin(test.frequency, freqs)
        for model, v in scores.items():
            per_freq = {int(f): float(v[test.frequency == f].mean()) for f in np.unique(test.frequency)}
            per_int = {float(a): float(v[inside & (test.intensity == a)].mean()) for a in INTENSITIES}
            rho = float(spearmanr(test.intensity[inside], v[inside]).statistic)
            results[(name, model)] = {"scores": v, "per_frequency": per_freq, "per_intensity": per_int}
            rows.append({"trained on": name, "model": model, _AUC: auc(v[low], v[~low]),
                         "mean score low band": float(v[low].mean()), "mean score high band": float(v[~low].mean()),
                         "Spearman(intensity, score)": rho})
            logger.info("frequency: trained on %s, %s: %s %.3f", name, model, _AUC, rows[-1][_AUC])
    figure = _figure(results, test, out_dir)
    page = _page(rows, results, s, figure)
    page.write(out_dir, quick, random_state, time.perf_counter() - start)
    return page.numbers


def _page(rows: list[dict], results: dict, s: FrequencySettings, figure: str) -> StudyPage:
    by = {(r["trained on"], r["model"]): r for r in rows}
    per_freq = [{"trained on": name, "model": model,
                 **{f"f={f}": v for f, v in results[(name, model)]["per_frequency"].items()}}
                for name in TRAIN_SETS for model in MODELS]
    per_int = [{"trained on": name, "model": model,
                **{f"a={a:g}": v for a, v in results[(name, model)]["per_intensity"].items()}}
               for name in TRAIN_SETS for model in MODELS]
    page = StudyPage(
        name="frequency",
        title="Study 3: frequency bias (sinusoid images)",
        claim=("Delft thesis (as summarised in issue 9), in line with Kirichenko et al. (arXiv:2006.08545) and "
               "Schirrmeister et al. (arXiv:2006.10848) for flows and the spectral bias of neural networks "
               "(Rahaman et al., arXiv:1806.08734) for autoencoders: likelihoods and reconstruction errors follow "
               "the frequency content of an image rather than its novelty: smooth low-frequency images score as "
               "more normal, even for a model trained on high frequencies only; intensity (contrast) shifts the "
               "scores too."),
        setup=(f"`flowad_studies.study_data.sinusoid_set`: {s.size}x{s.size} images "
               "`128 + 127 a sin(2 pi f t / S + phase)` along rows or columns, f in 1-5 (low band) or 11-15 "
               f"(high band) whole cycles per side, amplitude a in {INTENSITIES}, random phase, every (f, a) pair "
               f"equally often. Each model is trained in turn on {s.n_train} images of the low band, of the high "
               f"band and of both, and tested on the same {s.n_test} new images of each band. Models: whole-image "
               f"Glow (levels {s.glow.levels}, steps {s.glow.steps}, at most {s.glow.max_epochs} epochs; discrete NLL "
               "in bits/dim), the dense `AutoencoderDetector` (1024-256-64-16, robust-standardised pixels, error in "
               f"standardised units) and `ConvAutoencoderDetector` (mean squared error), each at most {s.ae_epochs} "
               f"epochs. Scores are anomaly scores (higher = less normal). '{_AUC}' is the ROC-AUC with the high "
               "band as the positive class: 1 when every high-frequency image scores above every low-frequency "
               "one, 0 for the reverse, 0.5 for no preference."),
        figures=[figure],
        numbers={"rows": rows, "per_frequency": per_freq, "per_intensity": per_int},
    )
    page.sections.append(("High vs low band, per training set", md_table(rows)))
    page.sections.append(("Mean score per test frequency", md_table(per_freq, digits=2)))
    page.sections.append(("Mean score per intensity (test images of the training bands)", md_table(per_int)))
    low_trained = [by[("low", m)][_AUC] for m in MODELS]
    high_trained = [by[("high", m)][_AUC] for m in MODELS]
    both = [by[("both", m)][_AUC] for m in MODELS]
    rhos = [by[(name, MODELS[0])]["Spearman(intensity, score)"] for name in TRAIN_SETS]

    def listing(values: list[float], models: tuple[str, ...] = MODELS) -> str:
        return ", ".join(f"{m} {v:.3f}" for m, v in zip(models, values, strict=True))

    if low_trained[0] > 0.9 and high_trained[0] < 0.1:
        page.sections.append(("Reading", (
            "Pure sinusoids are a narrow family (frequency, phase, orientation, amplitude), and every model learns "
            "its training band tightly: the other band is flagged in *both* directions (the Glow gives it "
            f"{by[('low', MODELS[0])]['mean score high band']:.3g} and "
            f"{by[('high', MODELS[0])]['mean score low band']:.3g} bits/dim), so no preference for low frequencies "
            "survives once they are absent from training. A frequency bias can only show where both bands are in "
            f"training: there the flow's {_AUC} is {both[0]:.3f} and the autoencoders' "
            f"{listing(both[1:], MODELS[1:])}. Intensity moves every score strongly (Spearman of intensity and "
            f"bits/dim {min(rhos):.2f} or more): a high-contrast sinusoid is less likely than a faint one of the "
            "same frequency.")))
    page.verdicts.append(("trained on low frequencies, every model flags high frequencies",
                          verdict(min(low_trained) > 0.9), f"{_AUC}: {listing(low_trained)}"))
    page.verdicts.append(("trained on high frequencies, the flow still prefers unseen low frequencies",
                          verdict(high_trained[0] > 0.5),
                          f"{_AUC}: {high_trained[0]:.3f} (mean bits/dim low band "
                          f"{by[('high', MODELS[0])]['mean score low band']:.4g}, high band "
                          f"{by[('high', MODELS[0])]['mean score high band']:.4g})"))
    page.verdicts.append(("... and so do the autoencoders", verdict(min(high_trained[1:]) > 0.5),
                          f"{_AUC}: {listing(high_trained[1:], MODELS[1:])}"))
    page.verdicts.append(("trained on both bands, low frequencies score as more normal (flow)",
                          verdict(both[0] >= 0.6), f"{_AUC}: {both[0]:.3f}"))
    page.verdicts.append(("trained on both bands, low frequencies score as more normal (autoencoders)",
                          verdict(min(both[1:]) >= 0.6), f"{_AUC}: {listing(both[1:], MODELS[1:])}"))
    page.verdicts.append(("the flow's NLL grows with intensity (contrast)", verdict(min(rhos) > 0.3),
                          "Spearman(intensity, bits/dim) trained on "
                          + ", ".join(f"{n} {r:.2f}" for n, r in zip(TRAIN_SETS, rhos, strict=True))))
    return page


def _figure(results: dict, test: SinusoidSet, out_dir) -> str:
    fig, axes = plt.subplots(2, len(MODELS), figsize=(3.4 * len(MODELS), 5.2), squeeze=False)
    freqs = sorted(np.unique(test.frequency))
    x = np.arange(len(freqs))
    for col, model in enumerate(MODELS):
        for k, (name, bands) in enumerate(TRAIN_SETS.items()):
            r = results[(name, model)]
            axes[0, col].plot(x, [r["per_frequency"][f] for f in freqs], marker="o", ms=3, color=f"C{k}",
                              label=f"trained on {name}")
            inside = np.isin(test.frequency, bands)
            for a in INTENSITIES:
                v = r["scores"][inside & (test.intensity == a)]
                axes[1, col].errorbar(a + 0.02 * (k - 1), v.mean(), v.std(), marker="o", ms=3, capsize=2,
                                      color=f"C{k}")
        axes[0, col].set_xticks(x, [str(f) for f in freqs], fontsize=6)
        axes[0, col].set_title(model, fontsize=8)
        axes[0, col].set_xlabel("test frequency (cycles per side)", fontsize=7)
        axes[1, col].set_xlabel("intensity (amplitude), test images of the training bands", fontsize=7)
        means = np.array([results[(n, model)]["per_frequency"][f] for n in TRAIN_SETS for f in freqs])
        if means.min() > 0 and means.max() > 20 * means.min():
            axes[0, col].set_yscale("log")  # unseen bands can score orders of magnitude higher
        for ax in axes[:, col]:
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    axes[0, 0].set_ylabel("mean anomaly score", fontsize=7)
    axes[1, 0].set_ylabel("score (mean ± std)", fontsize=7)
    return save_figure(fig, out_dir, "frequency_scores.png")
