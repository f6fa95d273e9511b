"""The study reproductions (flowad_studies): data builders are exact, every --quick run writes its
page, numbers and figures, the per-pixel likelihood split adds up."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from flowad_studies import STUDIES, GlowConfig, GlowDensity, run_study
from flowad_studies.study_data import (
    HIGH_FREQUENCIES,
    INTENSITIES,
    LOW_FREQUENCIES,
    contaminant_count,
    contamination_mix,
    sinusoid_set,
    with_squares,
)
from flowad_studies.temporal import TemporalSettings, run_temporal
from typer.testing import CliRunner

from flowad.cli import app

SHARES = (0.001, 0.01, 0.1, 0.2, 0.4, 0.87)


def _pools(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Image pools whose images carry their identity: normal ids 0..n-1, contaminants 1000 + id."""
    ids = np.arange(n)
    normal = np.broadcast_to(ids[:, None, None], (n, 2, 2)).astype(np.int64)
    return normal, normal + 1000


@pytest.mark.parametrize("share", (0.0, *SHARES))
def test_contamination_mix_has_exactly_the_claimed_count(share):
    normal, contaminant = _pools()
    images, flags = contamination_mix(normal, contaminant, share, 400, random_state=3)
    expected = contaminant_count(share, 400)
    assert expected == (max(1, round(share * 400)) if share else 0)
    assert images.shape == (400, 2, 2) and flags.sum() == expected
    ids = images[:, 0, 0]
    np.testing.assert_array_equal(ids >= 1000, flags)  # flags mark exactly the contaminant images
    assert len(np.unique(ids)) == 400  # drawn without replacement


def test_contamination_counts_and_bad_input():
    assert [contaminant_count(s, 400) for s in SHARES] == [1, 4, 40, 80, 160, 348]
    assert contaminant_count(0.001, 1000) == 1 and contaminant_count(0.87, 1000) == 870
    normal, contaminant = _pools(100)
    with pytest.raises(ValueError, match="share"):
        contamination_mix(normal, contaminant, 1.0, 50)
    with pytest.raises(ValueError, match="contaminant holds 100"):
        contamination_mix(normal, contaminant, 0.87, 400)
    with pytest.raises(ValueError, match="normal holds 100"):
        contamination_mix(normal, contaminant, 0.0, 400)


def _digits(n: int = 40) -> np.ndarray:
    """MNIST-like images: a bright ring on black."""
    yy, xx = np.mgrid[:28, :28]
    ring = (np.abs(np.hypot(yy - 14, xx - 14) - 7) < 2).astype(np.uint8) * 230
    return np.repeat(ring[None], n, axis=0)


def test_squares_are_exact_and_where_they_claim():
    images = _digits()
    out, masks, colors = with_squares(images, "random", (2, 4), random_state=0)
    assert set(colors) == {"black", "white"}
    for image, new, mask, color in zip(images, out, masks, colors, strict=True):
        rows, cols = np.nonzero(mask)
        side = rows.max() - rows.min() + 1
        assert 2 <= side <= 4 and cols.max() - cols.min() + 1 == side and mask.sum() == side**2  # a full square
        assert (new[mask] == (0 if color == "black" else 255)).all()
        np.testing.assert_array_equal(new[~mask], image[~mask])  # nothing outside the mask changes
        centre = (rows.min() + side // 2, cols.min() + side // 2)
        assert (image[centre] >= 128) if color == "black" else (image[centre] == 0)
        assert (new != image).any()  # every square is a real change
    fixed = with_squares(images[:4], np.array(["white", "black", "white", "black"]), 3, random_state=1)
    assert list(fixed[2]) == ["white", "black", "white", "black"] and (fixed[1].sum((1, 2)) == 9).all()
    with pytest.raises(ValueError, match="colors"):
        with_squares(images, "grey")
    with pytest.raises(ValueError, match="images"):
        with_squares(images.astype(float))


def test_sinusoid_set_has_the_claimed_frequencies_and_intensities():
    n = 15 * 4
    for band in (LOW_FREQUENCIES, HIGH_FREQUENCIES):
        data = sinusoid_set(n, band, INTENSITIES, 32, random_state=2)
        assert data.images.shape == (n, 32, 32) and data.images.dtype == np.uint8
        pairs, counts = np.unique(np.c_[data.frequency, data.intensity], axis=0, return_counts=True)
        assert len(pairs) == len(band) * len(INTENSITIES) and (counts == 4).all()  # exactly balanced
        for image, f, a, vertical in zip(data.images, data.frequency, data.intensity, data.vertical, strict=True):
            line = image[:, 0] if vertical else image[0, :]
            assert (image == (line[:, None] if vertical else line[None, :])).all()  # stripes along one axis
            spectrum = np.abs(np.fft.rfft(line.astype(float) - line.mean()))
            assert spectrum.argmax() == f
            assert abs(2 * spectrum[f] / 32 / 127 - a) < 0.01  # amplitude = intensity (up to rounding)
    with pytest.raises(ValueError, match="frequencies"):
        sinusoid_set(10, (16,), size=32)


def test_glow_bits_map_adds_up_to_the_likelihood():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    density = GlowDensity(GlowConfig(levels=2, steps=1, hidden_channels=4, max_epochs=1), random_state=0).fit(images)
    bits = density.bits_per_dim(images)
    np.testing.assert_allclose(density.bits_map(images).mean((1, 2)), bits, rtol=0, atol=1e-10)
    assert density.latent_sq_norm(images).shape == (12,)
    with pytest.raises(ValueError, match="images"):
        density.bits_per_dim(images[:, :4, :4])
    with pytest.raises(ValueError, match="divisible"):
        GlowDensity(GlowConfig(levels=3)).fit(rng.integers(0, 256, (4, 12, 12), dtype=np.uint8))


@pytest.mark.parametrize("name", [n for n in STUDIES if n != "temporal"])
def test_quick_study_writes_page_numbers_and_figures(name, tmp_path):
    torch.set_num_threads(1)
    numbers = run_study(name, tmp_path, quick=True, random_state=0)
    assert numbers
    page = (tmp_path / f"{name}.md").read_text()
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert "Published claim" in page and "## Verdict" in page and record["quick"] is True
    assert record["verdicts"] and all(v["verdict"] in ("reproduced", "did not reproduce", "not tested")
                                      for v in record["verdicts"])
    for figure in record["figures"]:
        assert (tmp_path / figure).stat().st_size > 1000 and f"]({figure})" in page


def test_temporal_study_reads_both_benchmarks(tmp_path):
    rows = [{"dataset": d, "method": m, "seed": 0, "precision": 0.5, "recall": 0.5, "f1": 0.5,
             "roc_auc": 0.9 if m == "maf" else 0.6, "event_f1": 0.7 if m == "maf" else 0.2}
            for d in ("a", "b") for m in ("maf", "iforest", "ocsvm", "ae", "elliptic")]
    import pandas as pd

    pd.DataFrame(rows).to_csv(tmp_path / "ts.csv", index=False)
    rare = [{"dataset": d, "seed": 0, "labelled_share": s, "roc_auc": 0.7 + s, "pr_auc": 0.3 + s}
            for d in ("x", "y") for s in (0.0, 0.01, 0.05)]
    (tmp_path / "rare.jsonl").write_text("\n".join(json.dumps(r) for r in rare))
    settings = TemporalSettings(tmp_path / "ts.csv", tmp_path / "rare.jsonl")
    numbers = run_temporal(tmp_path / "out", quick=True, settings=settings)
    assert numbers["rare_mean"]["5% labelled"]["roc_auc"] == pytest.approx(0.75)
    record = json.loads((tmp_path / "out" / "temporal.json").read_text())
    assert [v["verdict"] for v in record["verdicts"]] == ["reproduced", "reproduced"]
    assert (tmp_path / "out" / "temporal.png").is_file()
    with pytest.raises(FileNotFoundError, match="bench-ts"):
        run_temporal(tmp_path / "out", settings=TemporalSettings(tmp_path / "none.csv", tmp_path / "rare.jsonl"))


def test_cli_runs_a_quick_study(tmp_path):
    result = CliRunner().invoke(app, ["study", "small_defects", "--quick", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "small_defects.md").is_file() and (tmp_path / "small_defects_hist.png").is_file()
    result = CliRunner().invoke(app, ["study", "nonsense"])
    assert result.exit_code != 0
