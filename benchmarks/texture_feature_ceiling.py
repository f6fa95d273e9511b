"""How far can a backbone's features separate each texture defect from normal texture?

FastFlow's maps can only be as good as the features under them. This benchmark asks the features
directly, with no flow: for each texture of the built-in defect set and each backbone tap, one
Gaussian (full covariance) is fitted to the standardised feature vectors of every position of the
normal training crops, exactly as FastFlow sees them (256 px, 32 px mirrored margin, LayerNorm per
image); each test position is scored by its squared Mahalanobis distance, the margin is cut off,
and the map is upsampled to the crop. Reported per tap: image ROC-AUC (map maximum), pixel ROC-AUC,
and pixel ROC-AUC per defect kind (that kind's crops and the good crops), raw and after a Gaussian
blur of 4 px. A kind that no tap separates is out of reach for a density model over these features.

Writes ``feature_ceiling.jsonl`` / ``.md`` under ``--out`` for the default backbone
(EfficientNet-Lite0), ``feature_ceiling_<backbone>.jsonl`` / ``.md`` for another (``--backbone``,
any name :func:`flowad.backbones.resolve_backbone` takes).

Usage:
    python benchmarks/texture_feature_ceiling.py --textures grass --backbone efficientnet_lite2 \\
        --out docs/results/images
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowad.backbones import FeatureBackbone, resolve_backbone
from flowad.core.image_maps import backbone_input, gaussian_smooth, upsample
from flowad.datasets.textures import TEXTURE_DEFECTS, TEXTURES, make_texture_set
from flowad.evaluation.image_metrics import image_roc_auc, pixel_roc_auc
from flowad.evaluation.markdown import markdown_table
from flowad.models.fastflow.torch_model import stage_features

INPUT_SIZE, MARGIN = 256, 32
DEFAULT_BACKBONE = "efficientnet_lite0"


def taps(name: str) -> FeatureBackbone:
    """The backbone with every stage up to stride 16 (those FastFlow can use)."""
    catalogue = resolve_backbone(name).catalogue
    return resolve_backbone(name, tuple(k for k, (stride, _) in catalogue.items() if stride <= 16))


def tap_features(backbone: FeatureBackbone, images: np.ndarray,
                 batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Features ``(N, C, h, w)`` (margin included) of uint8 crops ``(N, H, W)`` per tap, as FastFlow sees them."""
    x = torch.as_tensor(images, dtype=torch.float32)[:, None] / 255
    parts = [stage_features(backbone, backbone_input(x[i : i + batch_size], INPUT_SIZE, MARGIN))
             for i in range(0, len(x), batch_size)]
    return {name: torch.cat([p[k] for p in parts]) for k, name in enumerate(backbone.stages)}


def gaussian_map(train: torch.Tensor, test: torch.Tensor, stride: int, size: tuple[int, int]) -> np.ndarray:
    """Squared Mahalanobis distance of every test position to a Gaussian of all training positions,
    margin cut, upsampled: ``(N, C, h, w)`` features -> ``(N, H, W)`` maps."""
    channels = train.shape[1]
    rows = train.permute(0, 2, 3, 1).reshape(-1, channels).double()
    mean = rows.mean(0)
    precision = torch.linalg.inv(torch.cov(rows.T) + 1e-3 * torch.eye(channels, dtype=torch.float64))
    centred = test.permute(0, 2, 3, 1).double() - mean
    maps = torch.einsum("nhwc,cd,nhwd->nhw", centred, precision, centred).float()
    k = MARGIN // stride
    return upsample(maps[:, k : maps.shape[1] - k, k : maps.shape[2] - k], size)


def evaluate(test, maps: torch.Tensor) -> dict:
    kinds = np.asarray(test.kinds)
    row = {}
    for label, m in (("raw", maps), ("blur4", gaussian_smooth(maps, 4.0))):
        m = m.numpy()
        row[f"{label}_image_roc_auc"] = image_roc_auc(test.labels, m.reshape(len(m), -1).max(1))
        row[f"{label}_pixel_roc_auc"] = pixel_roc_auc(test.masks, m)
        for kind in TEXTURE_DEFECTS:
            keep = (kinds == kind) | (kinds == "good")
            row[f"{label}_pixel_{kind}"] = pixel_roc_auc(test.masks[keep], m[keep])
    return row


def run(textures: list[str], seed: int, out: Path, backbone_name: str = DEFAULT_BACKBONE) -> list[dict]:
    torch.set_num_threads(1)
    backbone = taps(backbone_name)
    rows = []
    for texture in textures:
        train, test = make_texture_set(texture, random_state=seed)
        train_features, test_features = tap_features(backbone, train.images), tap_features(backbone, test.images)
        for name, stride in zip(backbone.stages, backbone.strides, strict=True):
            maps = gaussian_map(train_features[name], test_features[name], stride, test.images.shape[1:])
            rows.append({"texture": texture, "backbone": backbone_name, "tap": name,
                         "channels": int(test_features[name].shape[1]),
                         "seed": seed, **evaluate(test, maps)})
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    stem = "feature_ceiling" if backbone_name == DEFAULT_BACKBONE else f"feature_ceiling_{backbone_name}"
    with open(out / f"{stem}.jsonl", "w") as sink:
        sink.writelines(json.dumps(row) + "\n" for row in rows)
    write_markdown(pd.DataFrame(rows), out / f"{stem}.md", seed, backbone_name)
    return rows


def write_markdown(frame: pd.DataFrame, path: Path, seed: int, backbone_name: str = DEFAULT_BACKBONE) -> None:
    columns = ["image_roc_auc", "pixel_roc_auc", *[f"pixel_{k}" for k in TEXTURE_DEFECTS]]
    parts = [f"# Feature ceiling: one Gaussian per {backbone_name} tap, no flow (seed {seed})\n",
             "Written by `benchmarks/texture_feature_ceiling.py`; squared Mahalanobis distance per position, "
             "image score = map maximum; `pixel_<kind>` = pixel ROC-AUC on that kind's crops and the good crops.\n"]
    for label, title in (("raw", "raw maps"), ("blur4", "maps blurred with a 4 px Gaussian")):
        table = frame[["texture", "tap", "channels"]].copy()
        for column in columns:
            table[column.replace("pixel_", "px ")] = frame[f"{label}_{column}"].round(3)
        parts += [f"\n## {title}\n", markdown_table(table)]
    path.write_text("\n".join(parts) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textures", default=",".join(TEXTURES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--out", type=Path, default=Path("runs/feature_ceiling"))
    args = parser.parse_args()
    run([t for t in args.textures.split(",") if t], args.seed, args.out, args.backbone)


if __name__ == "__main__":
    main()
