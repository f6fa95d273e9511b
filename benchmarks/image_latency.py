"""CPU latency per 256 px image of each image model's scoring graph, all in one process on one
thread, so the numbers compare: FastFlow and PatchCore on EfficientNet-Lite0 and Lite2 at their
defaults (input size, mirrored margin, blur; PatchCore with a full 16,384-feature bank). The cost
of a graph depends on its shapes, not on what it learnt, so the flows are untrained and the bank is
random: no fit is timed.

Usage: python benchmarks/image_latency.py --out docs/results/images
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from flowad.backbones import resolve_backbone
from flowad.flows.fastflow2d import FastFlow2d
from flowad.models import FastFlowDetector, PatchCoreDetector
from flowad.models.fastflow.torch_model import FastFlowScoring
from flowad.models.patchcore.torch_model import PatchCoreScoring


def graphs(backbone_name: str) -> dict[str, torch.nn.Module]:
    """The scoring graphs of FastFlow and PatchCore as their defaults build them (sizes, margin, blur,
    couplings, bank), with untrained flows and a random bank."""
    ff, pc = FastFlowDetector(), PatchCoreDetector()
    flow_backbone = resolve_backbone(backbone_name, default_strides=FastFlowDetector.default_strides)
    flows = [FastFlow2d(c, ff.steps, ff.hidden_ratio, ff.clamp, ff.conv3x3_only, i)
             for i, c in enumerate(flow_backbone.channels)]
    core_backbone = resolve_backbone(backbone_name, default_strides=PatchCoreDetector.default_strides)
    dim = sum(core_backbone.channels)
    bank = torch.randn(pc.max_bank, dim, generator=torch.Generator().manual_seed(0))
    neighbours = torch.randint(pc.max_bank, (pc.max_bank, 9), generator=torch.Generator().manual_seed(1))
    fastflow = FastFlowScoring(flow_backbone, flows, ff.input_size, ff.reflect_margin, ff.smooth_sigma,
                               ff.image_score, ff.image_score_sigma)
    patchcore = PatchCoreScoring(core_backbone, bank, neighbours, pc.input_size, pc.reflect_margin, pc.smooth_sigma,
                                 pc.image_score)
    return {f"fastflow@{backbone_name}": fastflow.eval(), f"patchcore@{backbone_name}": patchcore.eval()}


def seconds_per_image(graph: torch.nn.Module, repeats: int) -> float:
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        graph(x)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            graph(x)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="efficientnet_lite0,efficientnet_lite2")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("runs/image_latency"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.backbones.split(","):
        for model, graph in graphs(name).items():
            rows.append({"model": model, "seconds_per_256px_image": seconds_per_image(graph, args.repeats)})
            print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Image models: CPU latency per 256 px image", "",
             f"Written by `benchmarks/image_latency.py`: one process, one torch thread, {args.repeats} images one at a "
             "time after a warm-up; both models' scoring graphs at their defaults (256 px with a 32 px mirrored "
             "margin, maps blurred by 4 px; FastFlow with 8 couplings per stage, PatchCore with a full "
             "16,384-feature bank).",
             "", "| model | seconds per image |", "|---|---|"]
    lines += [f"| {r['model']} | {r['seconds_per_256px_image']:.3f} |" for r in rows]
    (args.out / "latency.md").write_text("\n".join(lines) + "\n")
    (args.out / "latency.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
