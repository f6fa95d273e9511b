"""``flowad synth ...``: fit a patch flow on normal images, paste its low-likelihood samples into
normal images (written as an MVTec-style folder), and train a U-Net segmenter on such negatives."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from flowad import io
from flowad.cli.common import Quiet, command, csv_list, integer, out, progress_bar
from flowad.datasets import ImageSet, load_image_folder, write_image_folder
from flowad.models import UNetSegmenter
from flowad.synth import BLENDS, FLOW_KINDS, SIMPLE_GENERATORS, PatchSampler, simple_anomalies, synthetic_anomalies

__all__ = ["synth_app"]

logger = logging.getLogger("flowad.cli")

synth_app = typer.Typer(no_args_is_help=True, help="Synthetic anomalies from a flow's low-likelihood region.")

Size = Annotated[int | None, typer.Option(help="Resize every image to SIZE x SIZE pixels on loading.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
SamplerDir = Annotated[Path, typer.Argument(help="Sampler directory written by 'flowad synth fit'.")]
MaxClipped = Annotated[float, typer.Option(
    help="Redraw flow patches with more than this share of pixels outside 0..255.")]
Blend = Annotated[str, typer.Option(help=f"One of {', '.join(BLENDS)}.")]
PasteSize = Annotated[str, typer.Option("--paste-size", help="Side of the pasted squares: LOW,HIGH.")]


def _pair(text: str, name: str) -> tuple[int, int]:
    """``"8,32"`` -> ``(8, 32)``; ``"8"`` -> ``(8, 8)``."""
    values = [integer(part, name) for part in csv_list(text) or []]
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or values[0] < 1 or values[1] < values[0]:
        raise ValueError(f"--{name} must be N or LOW,HIGH with 1 <= LOW <= HIGH, got {text!r}")
    return values[0], values[1]


@command(synth_app, "fit")
def fit(
    folder: Annotated[Path, typer.Argument(help="MVTec-style folder; trains on train/good/.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Sampler model directory to write.")],
    patch_size: Annotated[int, typer.Option(help="Side of the patches the flow models.")] = 8,
    region_size: Annotated[str, typer.Option(help="Sides of the regions cut before resizing: LOW,HIGH.")] = "8,32",
    max_patches: Annotated[int, typer.Option(help="Training patches.")] = 20_000,
    transforms: Annotated[int, typer.Option(help="Flow depth.")] = 5,
    hidden: Annotated[str, typer.Option(help="Hidden widths of each transform, comma-separated.")] = "128,128",
    epochs: Annotated[int, typer.Option(help="Maximum training epochs.")] = 50,
    size: Size = None,
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    """Fit a patch flow (MAF) on the normal training images of FOLDER and save it."""
    train = load_image_folder(folder, "train", size=size)
    normal = train.images[train.labels == 0]
    sampler = PatchSampler(
        patch_size=patch_size, region_size=_pair(region_size, "region-size"), max_patches=max_patches,
        transforms=transforms, hidden_features=tuple(integer(h, "hidden") for h in csv_list(hidden) or []),
        max_epochs=epochs, random_state=seed,
    )  # fmt: skip
    with progress_bar(quiet) as progress:
        task = progress.add_task(f"fit patch flow on {len(normal)} images", total=epochs, status="")
        sampler.fit(normal, callback=lambda e, t, v: progress.update(task, completed=e + 1, status=f"val NLL {v:.4g}"))
    io.save(sampler, output)
    low, high = np.quantile(sampler.train_log_likelihood_, [0.001, 0.5])
    out.print(f"saved patch sampler ({sampler.max_patches} patches of {patch_size}x{patch_size} from {len(normal)} "
              f"images; log-likelihood median {high:.1f}, 0.1% quantile {low:.1f} nats) to {output}")  # fmt: skip


def _concat(sets: list[ImageSet]) -> ImageSet:
    return ImageSet(
        images=np.concatenate([s.images for s in sets]),
        labels=np.concatenate([s.labels for s in sets]),
        masks=np.concatenate([s.masks for s in sets]),
        kinds=[k for s in sets for k in s.kinds],
        names=[name for s in sets for name in s.names],
    )


def _flow_kinds(method: str) -> list[str]:
    kinds = csv_list(method) or []
    if not kinds or any(k not in FLOW_KINDS for k in kinds):
        raise ValueError(f"--method must name flow kinds from {', '.join(FLOW_KINDS)}, got {method!r}")
    return kinds


def _load_sampler(sampler_dir: Path) -> PatchSampler:
    sampler = io.load(sampler_dir)
    if not isinstance(sampler, PatchSampler):
        raise ValueError(f"{sampler_dir} holds a {type(sampler).__name__}, not a patch sampler ('flowad synth fit')")
    return sampler


@command(synth_app, "segment")
def segment(
    sampler_dir: SamplerDir,
    folder: Annotated[Path, typer.Argument(help="MVTec-style folder; trains on train/good/.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Segmenter model directory to write.")],
    n: Annotated[int, typer.Option("--n", help="Training images with pasted flow samples, per method.")] = 100,
    method: Annotated[str, typer.Option(
        help=f"Comma-separated flow kinds: {', '.join(FLOW_KINDS)}.")] = "temperature,far",
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (temperature: default 1.5).")] = None,
    max_clipped: MaxClipped = 0.0,
    blend: Blend = "none",
    paste_size: PasteSize = "8,48",
    epochs: Annotated[int, typer.Option(help="Maximum training epochs.")] = 40,
    size: Size = None,
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    """Train a U-Net to segment flow samples pasted into the normal training images of FOLDER.

    It never sees a real anomaly. Score it like any image model: 'flowad image score OUTPUT FOLDER --heatmaps DIR'.
    """
    kinds = _flow_kinds(method)
    if n < 1:
        raise ValueError(f"--n must be a positive integer, got {n}")
    if blend not in BLENDS:
        raise ValueError(f"--blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    if epochs < 1:
        raise ValueError(f"--epochs must be a positive integer, got {epochs}")
    sampler = _load_sampler(sampler_dir)
    train = load_image_folder(folder, "train", size=size, grayscale=sampler.n_channels_ == 1)
    normal = train.images[train.labels == 0]
    rng = np.random.default_rng(seed)
    with progress_bar(quiet) as progress:
        task = progress.add_task("synthetic anomalies", total=len(kinds), status="")
        made = []
        for i, kind in enumerate(kinds):
            progress.update(task, completed=i, status=kind)
            made.append(synthetic_anomalies(normal, sampler, n, kind, rng, temperature=temperature,
                                            max_clipped=max_clipped, blend=blend,
                                            size=_pair(paste_size, "paste-size")))  # fmt: skip
        progress.update(task, completed=len(kinds))
        negatives = _concat(made)
        segmenter = UNetSegmenter(max_epochs=epochs, random_state=seed)
        progress.add_task(f"fit U-Net on {len(normal)} normal and {len(negatives)} pasted images", total=None,
                          status="")
        segmenter.fit(normal, negative_images=negatives.images, negative_masks=negatives.masks)
    io.save(segmenter, output)
    out.print(f"saved U-Net segmenter ({len(normal)} normal images, {len(negatives)} with flow samples: "
              f"{', '.join(kinds)}) to {output}")


@command(synth_app, "paste")
def paste(
    sampler_dir: SamplerDir,
    folder: Annotated[Path, typer.Argument(help="MVTec-style folder with the normal images.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (MVTec AD layout).")],
    n: Annotated[int, typer.Option("--n", help="Anomalous images per method.")] = 1000,
    method: Annotated[str, typer.Option(
        help=f"Comma-separated: flow kinds {', '.join(FLOW_KINDS)}; simple defects "
             f"{', '.join(SIMPLE_GENERATORS)} for comparison.")] = "temperature",
    temperature: Annotated[float | None, typer.Option(
        help="Sampling temperature (temperature: default 1.5; boundary/far: default chosen by a pilot run).")] = None,
    quantile: Annotated[float, typer.Option(help="tail: chi-square quantile of the latent radius.")] = 0.99,
    max_clipped: MaxClipped = 0.0,
    blend: Blend = "none",
    paste_size: PasteSize = "8,48",
    per_image: Annotated[str, typer.Option(help="Pasted patches per image: LOW,HIGH.")] = "1,1",
    size: Size = None,
    seed: Seed = 0,
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty output folder.")] = False,
    quiet: Quiet = False,
) -> None:
    """Paste flow samples (and optionally simple defects) into normal images of FOLDER.

    Writes OUT/train/good, OUT/test/good (FOLDER's normal test images), OUT/test/<kind>, OUT/ground_truth/<kind>.

    Anomalies go into FOLDER's normal test images (its training images if it has none); flow kinds: flow_<method>.
    """
    kinds = csv_list(method) or []
    unknown = [k for k in kinds if k not in FLOW_KINDS and k not in SIMPLE_GENERATORS]
    if not kinds or unknown:
        raise ValueError(f"--method must name kinds from {', '.join([*FLOW_KINDS, *SIMPLE_GENERATORS])}, "
                         f"got {method!r}")  # fmt: skip
    if n < 1:
        raise ValueError(f"--n must be a positive integer, got {n}")
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise ValueError(f"--output {str(output)!r} exists and is not an empty folder; pass --overwrite to use it")
    if blend not in BLENDS:
        raise ValueError(f"--blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    sampler = _load_sampler(sampler_dir)
    gray = sampler.n_channels_ == 1
    train = load_image_folder(folder, "train", size=size, grayscale=gray)
    train = train.subset(train.labels == 0)
    test_good = None
    if (folder / "test" / "good").is_dir():
        test = load_image_folder(folder, "test", size=size, grayscale=gray)
        test_good = test.subset(test.labels == 0) if (test.labels == 0).any() else None
    base = (test_good if test_good is not None else train).images
    logger.info("pasting into %d normal %s images", len(base), "test" if test_good is not None else "training")
    rng = np.random.default_rng(seed)
    paste_options = {"size": _pair(paste_size, "paste-size"), "blend": blend,
                     "n_per_image": _pair(per_image, "per-image")}  # fmt: skip
    flow_options = {"temperature": temperature, "quantile": quantile, "max_clipped": max_clipped}
    made = []
    with progress_bar(quiet) as progress:
        task = progress.add_task("synthetic anomalies", total=len(kinds), status="")
        for i, kind in enumerate(kinds):
            progress.update(task, completed=i, status=kind)
            if kind in FLOW_KINDS:
                made.append(synthetic_anomalies(base, sampler, n, kind, rng, **flow_options, **paste_options))
            else:
                made.append(simple_anomalies(base, kind, n, rng))
        progress.update(task, completed=len(kinds))
    test_set = _concat(([test_good] if test_good is not None else []) + made)
    write_image_folder(output, train=train, test=test_set, overwrite=overwrite)
    counts = ", ".join(f"{s.kinds[0]}: {len(s)}" for s in made)
    out.print(f"wrote {len(train)} normal training images and {len(test_set)} test images ({counts}) to {output}")
