"""The HTML page of flowad image score: cards sorted by score, the threshold line, one colour scale,
mask outlines, metrics only with labels, a bounded number of cards; it opens cleanly in a browser."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from flowad.core.safe_files import TEMP_MARK
from flowad.evaluation.image_report import OUTLINE_RGB, metric_rows, write_image_report
from tests.browser import external_references, open_page


def _inputs(n=8, size=24, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(60, 200, (n, size, size), dtype=np.uint8)
    maps = rng.random((n, size, size))
    masks = np.zeros((n, size, size), bool)
    masks[-2:, 5:12, 5:12] = True  # the last two images are defective
    maps[-2:, 5:12, 5:12] += 3
    kinds = ["good"] * (n - 2) + ["crack"] * 2
    files = [f"test/{kind}/{i:03d}.png" for i, kind in enumerate(kinds)]
    scores = maps.max(axis=(1, 2))
    return {"files": files, "kinds": kinds, "images": images, "maps": maps, "scores": scores,
            "p_values": np.linspace(0.05, 0.9, n), "masks": masks}


def _cards(page):
    """(file, flagged) of every card, in page order, and the index of the threshold line among them."""
    cards, line = [], None
    for match in re.finditer(r"<figure class='card( flagged)?'>.*?<div class='file'>([^<]+)</div>|"
                             r"<div class='threshold'>", page):
        if match.group(0).startswith("<div class='threshold'>"):
            line = len(cards)
        else:
            cards.append((match.group(2), match.group(1) is not None))
    return cards, line


def _card_pixels(page, file):
    """The thumbnail of the card of ``file``, as an RGB array."""
    data = re.search(rf'alt="{re.escape(file)}" src="data:image/png;base64,([^"]+)"', page).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_page_sorts_by_score_marks_flagged_cards_and_opens_cleanly(tmp_path):
    inputs = _inputs()
    threshold = float(np.sort(inputs["scores"])[-3])  # the two highest scores lie above it
    path = write_image_report(tmp_path / "report.html", **inputs, threshold=threshold,
                              metrics={"image_roc_auc": 1.0, "pixel_roc_auc": 0.95, "n_images": 8},
                              model={"model": "ConvAutoencoderDetector"}, contamination=0.1)
    page = path.read_text()
    cards, line = _cards(page)
    order = np.argsort(-inputs["scores"], kind="stable")
    assert [file for file, _ in cards] == [inputs["files"][i] for i in order]
    assert [flag for _, flag in cards] == [True, True] + [False] * 6 and line == 2
    assert "2 of 8 images flagged" in page and "ConvAutoencoderDetector" in page
    assert "images above are flagged" in page and "p-value 0.9" in page
    assert external_references(page) == [] and "<script" not in page
    assert not list(tmp_path.glob(f"*{TEMP_MARK}*"))
    dom, console = open_page(path)
    assert console == []
    assert "image ROC-AUC" in dom and "pixel ROC-AUC" in dom


def test_mask_outlines_only_on_images_with_masks(tmp_path):
    inputs = _inputs()
    page = write_image_report(tmp_path / "r.html", **inputs, threshold=10.0).read_text()
    cyan = [(_card_pixels(page, f) == OUTLINE_RGB).all(axis=2).sum() for f in inputs["files"]]
    assert all(c == 0 for c in cyan[:-2]) and all(c > 10 for c in cyan[-2:])
    assert "ground-truth mask" in page


def test_small_images_are_enlarged_and_large_ones_shrunk_to_the_thumbnail_size(tmp_path):
    for size, side in ((24, 192), (400, 192), (100, 100)):
        inputs = _inputs(n=3, size=size)
        page = write_image_report(tmp_path / f"r{size}.html", **inputs, threshold=0.0).read_text()
        assert _card_pixels(page, inputs["files"][0]).shape == (side, side, 3)


def test_no_metrics_without_labels_and_threshold_line_on_top_when_nothing_is_flagged(tmp_path):
    inputs = _inputs()
    page = write_image_report(tmp_path / "r.html", **{**inputs, "p_values": None, "masks": None},
                              threshold=1e9).read_text()
    cards, line = _cards(page)
    assert line == 0 and not any(flag for _, flag in cards)
    assert "Metrics" not in page and "p-value -" in page and "ground-truth mask" not in page


def test_large_folders_show_the_top_cards_and_say_where_the_rest_are(tmp_path):
    inputs = _inputs(n=12)
    page = write_image_report(tmp_path / "r.html", **inputs, threshold=float(np.sort(inputs["scores"])[-6]),
                              max_cards=3, scores_file="scores.csv").read_text()
    cards, line = _cards(page)
    assert len(cards) == 3 and line is None  # all three flagged; the line falls below them
    assert "9 more images with lower scores, 2 of them flagged: all scores are in scores.csv" in page


@pytest.mark.parametrize("change, match", [
    ({"files": ["a.png"]}, "files must have 8"),
    ({"maps": np.zeros((8, 5, 5))}, "images must have shape"),
    ({"p_values": np.zeros(3)}, "p_values must have shape"),
    ({"masks": np.zeros((8, 3, 3), bool)}, "masks must have shape"),
    ({"max_cards": 0}, "max_cards"),
])
def test_bad_arguments_are_refused_by_name(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        write_image_report(tmp_path / "r.html", **{**_inputs(), **change}, threshold=0.5)
    assert not list(tmp_path.iterdir())


def test_metric_rows_read_as_rates_and_counts_and_skip_missing_metrics():
    rows = metric_rows({"image_roc_auc": 0.98765, "aupro": float("nan"), "n_anomalous": 1200})
    assert rows == [("image ROC-AUC", "0.988"), ("anomalous images", "1,200")]
