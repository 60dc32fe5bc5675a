"""Cheaper test-time augmentation against the full 18 views: CPU time and test mIoU of each option.

A trained SAR checkpoint (``--ckpt``, e.g. the demo fit's) predicts every test tile of a data root
(``<root>/OpenEarthMap-SAR/test/sar_images`` against ``test/labels``) with the checkpoint's window
and stride and each TTA option, on the default runtime (``auto``: OpenVINO on the CPU); mIoU over classes
1..8 with background pixels counted (the official metric). CPU time is the process's, so the load of
a shared machine matters less than wall time; the options run in turn, ``--repeats`` times
(alternating direction), and the time is their median.

    python benchmarks/tta_options.py --ckpt CKPT --root data/demo [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch

from datamodules.rasters import read_label, read_raster
from lightning_modules.metrics import LandCoverIoU
from sar_inference.predictor import combine, load_predictor
from sar_inference.settings import InferenceOverrides

SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
FLIPS = ("none", "h", "v")
OPTIONS: dict[str, InferenceOverrides] = {
    "1 view": InferenceOverrides(scales=(1.0,), flips=("none",)),
    "flips only (3 views)": InferenceOverrides(scales=(1.0,), flips=FLIPS),
    "3 scales x 3 flips (9 views)": InferenceOverrides(scales=(0.75, 1.0, 1.25), flips=FLIPS),
    "6 scales, no flip (6 views)": InferenceOverrides(scales=SCALES, flips=("none",)),
    "full (18 views)": InferenceOverrides(scales=SCALES, flips=FLIPS),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    test = args.root / "OpenEarthMap-SAR" / "test"
    tiles = [
        (read_raster(p), read_label(test / "labels" / p.name)) for p in sorted((test / "sar_images").glob("*.tif"))
    ]
    predictors = {name: load_predictor(args.ckpt, option) for name, option in OPTIONS.items()}
    first = next(iter(predictors.values()))
    print(f"{len(tiles)} test tiles of {tiles[0][0].shape[1]}x{tiles[0][0].shape[2]}, window {first.inference.window}, "
          f"stride {first.inference.stride}, runtime {type(first.models[0].runner).__name__}")  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in OPTIONS}
    scores: dict[str, float] = {}
    for repeat in range(args.repeats):
        for name in list(OPTIONS) if repeat % 2 == 0 else list(OPTIONS)[::-1]:
            metric = LandCoverIoU()
            start = time.process_time()
            for sar, label in tiles:
                predicted = combine(predictors[name].probs(sar)).label
                metric.update(torch.from_numpy(predicted)[None].long(), torch.from_numpy(label)[None].long())
            seconds[name].append(time.process_time() - start)
            scores[name] = float(metric.compute()["mIoU"])
    full = statistics.median(seconds["full (18 views)"])
    print(f"{'TTA':<30} {'CPU s':>7} {'of full':>8} {'test mIoU':>10}   (CPU s per repeat)")
    for name in OPTIONS:
        median = statistics.median(seconds[name])
        runs = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(f"{name:<30} {median:7.1f} {median / full:8.2f} {scores[name]:10.4f}   ({runs})")


if __name__ == "__main__":
    main()
