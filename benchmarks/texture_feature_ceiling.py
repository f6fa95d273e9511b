"""How far can a backbone's features separate each texture defect from normal texture?

FastFlow's maps can only be as good as the features under them. This benchmark asks the features
directly, with no flow: for each texture of the built-in defect set and each backbone tap, one
Gaussian (full covariance) is fitted to the standardised feature vectors of every position of the
normal training crops, exactly as FastFlow sees them (256 px, 32 px mirrored margin, LayerNorm per
image); each test position is scored by its squared Mahalanobis distance, the margin is cut off,
and the map is upsampled to the crop. Reported per tap: image ROC-AUC (map maximum), pixel ROC-AUC,
and pixel ROC-AUC per defect kind, raw and after a Gaussian blur of 4 px: over that kind's crops
and the good crops (``pixel_<kind>``) and over that kind's crops only (``pixel_<kind>_only``, as the
image benchmark's per-kind rows count them). A kind that no tap separates is out of reach for a
density model over these features.

With ``--models`` (the image benchmark's ``results.jsonl``) it also writes
``ceiling_vs_models[_<backbone>].md``: per texture and kind, the best tap's pixel ROC-AUC beside each
model on that backbone, counted the same way (overall and kind by kind).

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
            row[f"{label}_pixel_{kind}_only"] = pixel_roc_auc(test.masks[kinds == kind], m[kinds == kind])
    return row


def model_backbone(model: str) -> str:
    """The backbone of an image-benchmark model entry (``"fastflow@efficientnet_lite2"``)."""
    return model.partition("@")[2] or DEFAULT_BACKBONE


def compare_with_models(ceiling: pd.DataFrame, models: pd.DataFrame, backbone_name: str) -> pd.DataFrame:
    """Per texture and defect kind (and ``all``): the best tap's pixel ROC-AUC, raw or blurred, and
    each model on ``backbone_name`` counted the same way, with the model's margin over the ceiling.

    Args:
        ceiling: Rows of this benchmark (one per texture and tap).
        models: Texture rows of the image benchmark's ``results.jsonl`` (``model``, ``dataset``,
            ``pixel_roc_auc``, ``per_kind``).
    """
    rows = []
    models = models[models["model"].map(model_backbone) == backbone_name]
    for texture, taps_of in ceiling.groupby("texture", sort=False):
        for kind in ("all", *TEXTURE_DEFECTS):
            suffix = "pixel_roc_auc" if kind == "all" else f"pixel_{kind}_only"
            values = taps_of[[f"raw_{suffix}", f"blur4_{suffix}"]]
            best = float(values.max().max())
            tap = taps_of.loc[values.max(axis=1).idxmax(), "tap"]
            raw = float(taps_of[f"raw_{suffix}"].max())
            row = {"texture": texture, "kind": kind, "ceiling": best, "best tap": tap, "ceiling, raw maps": raw}
            for r in models[models["dataset"] == texture].itertuples():
                value = r.pixel_roc_auc if kind == "all" else r.per_kind.get(kind, {}).get("pixel_roc_auc")
                if value is not None:
                    row[r.model] = value
                    row[f"{r.model} - ceiling"] = value - best
            rows.append(row)
    return pd.DataFrame(rows)


def run(textures: list[str], seed: int, out: Path, backbone_name: str = DEFAULT_BACKBONE,
        models: Path | None = None) -> list[dict]:
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
    if models is not None:
        write_comparison(pd.DataFrame(rows), models, out, seed, backbone_name)
    return rows


def write_comparison(ceiling: pd.DataFrame, models: Path, out: Path, seed: int, backbone_name: str) -> Path:
    """``ceiling_vs_models[_<backbone>].md`` from the ceiling rows and the image benchmark's rows."""
    bench = pd.DataFrame([json.loads(line) for line in models.read_text().splitlines() if line.strip()])
    bench = bench[(bench["task"] == "texture") & bench["per_kind"].notna()] if "per_kind" in bench else bench.iloc[:0]
    table = compare_with_models(ceiling, bench, backbone_name)
    stem = "ceiling_vs_models" if backbone_name == DEFAULT_BACKBONE else f"ceiling_vs_models_{backbone_name}"
    path = out / f"{stem}.md"
    path.write_text("\n".join([
        f"# Models against the feature ceiling of {backbone_name} (seed {seed})\n",
        "Written by `benchmarks/texture_feature_ceiling.py --models ...`. Pixel ROC-AUC; `all` counts every "
        "test crop, a defect kind counts that kind's crops only, for the ceiling and for the models alike. "
        "`ceiling` is the best tap with raw or 4 px blurred maps, `ceiling, raw maps` the best without the "
        "blur (FastFlow's and PatchCore's maps are blurred by 4 px by default; `+blur0` rows are the same fit "
        "unblurred). A margin is taken against "
        "`ceiling`: positive means the model beats every single-tap Gaussian of its backbone.\n",
        markdown_table(table.round(3)),
    ]) + "\n")
    return path


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
    parser.add_argument("--models", type=Path, default=None,
                        help="the image benchmark's results.jsonl, to compare its models with the ceiling")
    args = parser.parse_args()
    run([t for t in args.textures.split(",") if t], args.seed, args.out, args.backbone, args.models)


if __name__ == "__main__":
    main()
