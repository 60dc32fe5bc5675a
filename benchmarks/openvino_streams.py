"""OpenVINO's batch split over throughput streams against one latency-compiled model, in one run.

The network alone (no reading or writing): a U-Net (ResNet-18, the demo model; ResNet-34) with random
weights on a batch of random 256^2 single-band windows, timed per batch as wall and process CPU time.
Three ways take turns in every repeat: PyTorch eager, OpenVINO's latency model (every core on the
whole batch, the way before the split) and ``OpenVINONetwork`` (the batch split over the throughput
streams); the largest difference of the softmax from PyTorch's is printed with each.

    python benchmarks/openvino_streams.py [--batch 2 8] [--repeats 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import segmentation_models_pytorch as smp
import torch
from torch import Tensor

from sar_inference.runtimes import OpenVINONetwork, onnx_bytes


def timed(run: Callable[[Tensor], Tensor], batch: Tensor) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run(batch)
    return time.perf_counter() - wall, time.process_time() - cpu


def eager_logits(network: torch.nn.Module, images: Tensor) -> Tensor:
    with torch.inference_mode():
        return network(images)


def latency_logits(runner: OpenVINONetwork, images: Tensor) -> Tensor:
    """The whole batch on OpenVINO's latency model, every core on it (no split over streams)."""
    return torch.from_numpy(runner.latency([images.numpy()])[0].copy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[2, 8], help="windows per forward pass")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--encoders", nargs="+", default=["resnet18", "resnet34"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores")
    for encoder in args.encoders:
        torch.manual_seed(0)
        network = smp.Unet(encoder, encoder_weights=None, in_channels=1, classes=9).eval()
        split = OpenVINONetwork(onnx_bytes(network, 32, 1))
        print(f"U-Net {encoder}: {len(split.requests)} throughput streams")

        eager = partial(eager_logits, network)
        ways = {"torch": eager, "openvino latency": partial(latency_logits, split), "openvino split": split}
        for size in args.batch:
            batch = torch.randn(size, 1, 256, 256, generator=torch.Generator().manual_seed(size))
            reference = eager(batch).softmax(1)
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
            for run in ways.values():
                run(batch)  # warm-up
            for repeat in range(args.repeats):
                for name in ways if repeat % 2 == 0 else list(ways)[::-1]:
                    runs[name].append(timed(ways[name], batch))
            print(f"  batch {size}, {args.repeats} repeats (median per batch):")
            for name, run in ways.items():
                wall = statistics.median(w for w, _ in runs[name])
                cpu = statistics.median(c for _, c in runs[name])
                difference = (run(batch).softmax(1) - reference).abs().max().item()
                print(f"    {name:<17} wall {wall * 1000:7.1f} ms  CPU {cpu * 1000:7.1f} ms  "
                      f"max |p - p_torch| {difference:.2e}")  # fmt: skip
            for name in ("openvino latency", "openvino split"):
                cpu = [t[1] / o[1] for t, o in zip(runs["torch"], runs[name], strict=True)]
                wall = [t[0] / o[0] for t, o in zip(runs["torch"], runs[name], strict=True)]
                print(f"    torch / {name}: CPU {statistics.median(cpu):.2f}x ({min(cpu):.2f}-{max(cpu):.2f}), "
                      f"wall {statistics.median(wall):.2f}x ({min(wall):.2f}-{max(wall):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
