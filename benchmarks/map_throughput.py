"""Throughput of ``map`` per runtime: km^2 of 0.5 m SAR per CPU-core-hour, one view and the 18-view TTA.

Two networks with the demo's inference settings (window 256, stride 128, 2 windows per forward):
the demo model (U-Net ResNet-18) and a U-Net ResNet-34, random weights (the time does not depend on
them) with BatchNorm statistics estimated on the scene, each loaded once per runtime (PyTorch eager,
ONNX Runtime, OpenVINO; float32). Every measurement is the whole ``map`` path (block-wise read,
windows, TTA, COG writing) on a synthetic speckled scene, and the runtimes take turns within each
repeat (the order reversed every other repeat) so that the load of a shared machine hits all alike:

* one view on a ``--size`` scene, ``--repeats`` times; 18 views (scales 0.5-1.75 x flips none/h/v)
  on a ``--tta-size`` scene, ``--tta-repeats`` times;
* CPU time is the process's (every thread of every runtime); km^2 per CPU-core-hour = area at
  0.5 m / CPU hours; each runtime's speed-up over PyTorch is taken per repeat (median, min-max);
* equal output: the largest difference of each runtime's probabilities from PyTorch's on the
  one-view scene.

    python benchmarks/map_throughput.py [--size 1024] [--tta-size 512] [--repeats 3] [--tta-repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from affine import Affine

from datamodules.rasters import write_raster
from datamodules.sar_scaling import SARScaling, ScaledSAR
from lightning_modules.networks import NetworkConfig
from lightning_modules.sar_segmenter import SARSegmenter
from sar_inference.predictor import TaskPredictor, load_predictor
from sar_inference.runtimes import RuntimeSettings
from sar_inference.scene_mapper import map_with_predictor
from sar_inference.settings import InferenceConfig, InferenceOverrides
from sar_studies.checkpoints import save_checkpoint

GSD = 0.5
DEMO_INFERENCE = InferenceConfig(window=256, stride=128, batch_size=2)
TTA = InferenceOverrides(scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flips=("none", "h", "v"))
RUNTIMES = ("torch", "onnxruntime", "openvino")


def speckled_scene(path: Path, size: int) -> Path:
    """A uint8 scene of blocky fields under multiplicative (gamma) speckle, UTM grid at 0.5 m."""
    rng = np.random.default_rng(size)
    fields = np.repeat(np.repeat(rng.uniform(20, 200, (size // 32 + 1, size // 32 + 1)), 32, 0), 32, 1)
    sar = np.clip(fields[:size, :size] * rng.gamma(4.0, 0.25, (size, size)), 0, 255).astype(np.uint8)
    write_raster(path, sar, crs="EPSG:32633", transform=Affine(GSD, 0, 4e5, 0, -GSD, 5e6))
    return path


def checkpoint(folder: Path, encoder: str, scene: Path) -> Path:
    """Random weights with BatchNorm statistics estimated on ``scene``'s windows, as a trained network's are.

    With the initial statistics (mean 0, variance 1) the activations grow through the layers until
    the probabilities saturate at 0 and 1, which no trained model gives and which magnifies float32
    rounding: a random ResNet-34's probabilities differed between runtimes by up to 1.0e-4 that way,
    2.4e-5 with estimated statistics (512^2 scene, OpenVINO against PyTorch).
    """
    torch.manual_seed(0)
    task = SARSegmenter(network=NetworkConfig(encoder=encoder), inference=DEMO_INFERENCE)
    raw, _ = ScaledSAR(scene, SARScaling()).read()
    side = DEMO_INFERENCE.window
    windows = torch.from_numpy(raw).unfold(1, side, side).unfold(2, side, side).reshape(-1, 1, side, side)
    for layer in task.model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over all windows
    task.model.train()
    with torch.no_grad():
        for batch in windows.float().split(DEMO_INFERENCE.batch_size):
            task.model(task.normalise(batch))
    task.model.eval()
    return save_checkpoint(task, folder / f"{encoder}.ckpt")


def timed_map(predictor: TaskPredictor, scene: Path, output: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one map."""
    wall, cpu = time.perf_counter(), time.process_time()
    map_with_predictor(predictor, ScaledSAR(scene, SARScaling()), output, progress=False, qgis_style=False)
    return time.perf_counter() - wall, time.process_time() - cpu


def km2_per_core_hour(size: int, cpu_seconds: float) -> float:
    return size * size * GSD * GSD / 1e6 / (cpu_seconds / 3600)


def measure(predictors: dict[str, TaskPredictor], scene: Path, size: int, repeats: int, out: Path) -> None:
    runs: dict[str, list[tuple[float, float]]] = {r: [] for r in RUNTIMES}
    for repeat in range(repeats):
        order = RUNTIMES if repeat % 2 == 0 else RUNTIMES[::-1]
        for runtime in order:
            runs[runtime].append(timed_map(predictors[runtime], scene, out / f"{runtime}.tif"))
    for runtime in RUNTIMES:
        cpu = [c for _, c in runs[runtime]]
        wall = [w for w, _ in runs[runtime]]
        rate = km2_per_core_hour(size, statistics.median(cpu))
        print(f"    {runtime:<12} CPU {statistics.median(cpu):7.1f} s (wall {statistics.median(wall):7.1f} s)  "
              f"{rate:8.3f} km^2 per CPU-core-hour")  # fmt: skip
    for runtime in RUNTIMES[1:]:
        cpu = [t[1] / o[1] for t, o in zip(runs["torch"], runs[runtime], strict=True)]
        wall = [t[0] / o[0] for t, o in zip(runs["torch"], runs[runtime], strict=True)]
        print(f"    {runtime} / torch throughput: CPU {statistics.median(cpu):.2f}x "
              f"(repeats {min(cpu):.2f}-{max(cpu):.2f}), wall {statistics.median(wall):.2f}x "
              f"({min(wall):.2f}-{max(wall):.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="side of the one-view scene (pixels)")
    parser.add_argument("--tta-size", type=int, default=512, help="side of the 18-view scene (pixels)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tta-repeats", type=int, default=1)
    parser.add_argument("--encoders", nargs="+", default=["resnet18", "resnet34"])
    args = parser.parse_args()
    cfg = DEMO_INFERENCE
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores; "
          f"window {cfg.window}, stride {cfg.stride}, batch {cfg.batch_size}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        one, many = speckled_scene(work / "one.tif", args.size), speckled_scene(work / "tta.tif", args.tta_size)
        for encoder in args.encoders:
            ckpt = checkpoint(work, encoder, one)
            print(f"U-Net {encoder} ({'the demo model' if encoder == 'resnet18' else 'larger'}):")
            for label, overrides, scene, size, repeats in (
                ("1 view", InferenceOverrides(), one, args.size, args.repeats),
                ("18 views", TTA, many, args.tta_size, args.tta_repeats),
            ):
                predictors = {}
                for runtime in RUNTIMES:
                    start = time.perf_counter()
                    predictors[runtime] = load_predictor(str(ckpt), overrides, RuntimeSettings(runtime=runtime))
                    if label == "1 view":
                        export = " (the ONNX export included)" if runtime == "onnxruntime" else ""
                        print(f"  load with {runtime}: {time.perf_counter() - start:.1f} s{export}")
                print(f"  {label}, {size}^2 scene ({size * size * GSD * GSD / 1e6:.4f} km^2), {repeats} repeat(s):")
                measure(predictors, scene, size, repeats, work)
                if label == "1 view":
                    raw, _ = ScaledSAR(scene, SARScaling()).read()
                    reference = predictors["torch"].probs(raw)[0]
                    for runtime in RUNTIMES[1:]:
                        difference = (predictors[runtime].probs(raw)[0] - reference).abs().max()
                        print(f"    equal output: max |p_{runtime} - p_torch| = {difference:.2e}")


if __name__ == "__main__":
    main()
