"""Cost of tiled inference: batched windows, test-time augmentation, and image size.

A small U-Net (ResNet-18 encoder, 1 channel in, 9 classes out, random weights, eval mode) on random
images, CPU, torch's default thread count:

(a) batched sliding window (``--batch-size`` windows per forward) against one window at a time,
    alternating runs so drift of a shared machine hits all alike; the median of the per-pair time
    ratios, and the largest difference. Two one-window-at-a-time variants: our engine with
    batch_size 1, and the reference's structure (mmsegmentation's ``slide_inference``: each
    window's output zero-padded to the whole image and added to a full-size sum, with a count
    matrix), here averaging softmax like ours so the outputs can be compared.
(d) window batch size on this CPU: time of one pass with batch sizes 1, 2, 4, 8.
(b) test-time augmentation: 1 view against the 18 views of the reference (6 scales x 3 flips),
    beside the ratios of pixel area and of window count that the time should follow.
(c) sliding window on a 1024^2 and a 2048^2 image (4x the area), each in a fresh subprocess so that
    ``ru_maxrss`` (peak resident memory; tracemalloc does not see torch's allocations) is its own
    (started through a forking shell: Linux carries a parent's peak RSS across a direct exec).

    python benchmarks/inference_speed.py [--pairs 2] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.networks import build_model
from sar_inference.engine import sliding_window_probs, tta_probs, window_positions

NUM_CLASSES = 9
TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
TTA_FLIPS = ("none", "h", "v")


def small_unet() -> nn.Module:
    torch.manual_seed(0)
    return build_model("Unet", "resnet18", 1, NUM_CLASSES).eval()


def random_image(size: int) -> torch.Tensor:
    return torch.randn(1, size, size, generator=torch.Generator().manual_seed(size))


def timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def warm_up(model: nn.Module, window: int, batch_size: int) -> None:
    with torch.inference_mode():
        for batch in {1, batch_size}:
            model(torch.zeros(batch, 1, window, window))


def window_count(height: int, width: int, window: int, stride: int) -> int:
    return len(window_positions(max(height, window), window, stride)) * len(
        window_positions(max(width, window), window, stride)
    )


def reference_slide_probs(model: nn.Module, image: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """One window per forward; each window's softmax padded to the image size and summed (mmseg's structure)."""
    _, height, width = image.shape
    ys, xs = window_positions(height, window, stride), window_positions(width, window, stride)
    probs = torch.zeros(1, NUM_CLASSES, height, width)
    count = torch.zeros(1, 1, height, width)
    with torch.inference_mode():
        for y in ys:
            for x in xs:
                out = model(image[None, :, y : y + window, x : x + window]).softmax(dim=1)
                probs += F.pad(out, (x, width - x - window, y, height - y - window))
                count[:, :, y : y + window, x : x + window] += 1
    return (probs / count)[0]


def bench_batching(model: nn.Module, args: argparse.Namespace) -> None:
    image = random_image(args.size)
    windows = window_count(args.size, args.size, args.window, args.stride)
    print(f"(a) batched vs one window at a time: {args.size}^2 image, window {args.window}, stride {args.stride}")
    print(f"    {windows} windows; batch_size {args.batch_size} vs 1; {torch.get_num_threads()} threads")
    ratios, reference_ratios, max_diff = [], [], 0.0
    for pair in range(args.pairs):
        t_batched, batched = timed(
            lambda: sliding_window_probs(model, image, NUM_CLASSES, args.window, args.stride, args.batch_size)
        )
        t_single, single = timed(lambda: sliding_window_probs(model, image, NUM_CLASSES, args.window, args.stride, 1))
        t_reference, reference = timed(lambda: reference_slide_probs(model, image, args.window, args.stride))
        max_diff = max(max_diff, float((batched - single).abs().max()), float((batched - reference).abs().max()))
        ratios.append(t_single / t_batched)
        reference_ratios.append(t_reference / t_batched)
        print(
            f"    pair {pair + 1}: batched {t_batched:6.2f} s   single {t_single:6.2f} s   "
            f"reference structure {t_reference:6.2f} s   single/batched {t_single / t_batched:.2f}   "
            f"reference/batched {t_reference / t_batched:.2f}"
        )
    print(
        f"    median speed-up over one window at a time: {statistics.median(ratios):.2f}x (our engine, batch 1), "
        f"{statistics.median(reference_ratios):.2f}x (the reference's structure)   max |difference| {max_diff:.2e}"
    )
    if max_diff >= 1e-5:
        raise SystemExit(f"batched and single-window outputs differ by {max_diff:.2e} (>= 1e-5)")


def bench_batch_sizes(model: nn.Module, args: argparse.Namespace) -> None:
    image = random_image(args.size)
    print(f"(d) windows per forward on this CPU ({args.size}^2, window {args.window}, stride {args.stride}):")
    times: dict[int, list[float]] = {b: [] for b in (1, 2, 4, 8)}
    for _ in range(args.pairs):
        for batch in times:
            times[batch].append(
                timed(lambda b=batch: sliding_window_probs(model, image, NUM_CLASSES, args.window, args.stride, b))[0]
            )
    best = min(times, key=lambda b: statistics.median(times[b]))
    print(
        "    "
        + "   ".join(f"batch {b}: {statistics.median(t):.2f} s" for b, t in times.items())
        + f"   fastest: {best}"
    )


def bench_tta(model: nn.Module, args: argparse.Namespace) -> None:
    size = args.tta_size
    image = random_image(size)
    sizes = [round(s * size) for s in TTA_SCALES]
    area_ratio = len(TTA_FLIPS) * sum(s * s for s in TTA_SCALES)
    window_ratio = (
        len(TTA_FLIPS)
        * sum(window_count(s, s, args.window, args.stride) for s in sizes)
        / window_count(size, size, args.window, args.stride)
    )
    common = {"window": args.window, "stride": args.stride, "batch_size": args.batch_size}
    # The one-view run is short, so take the median of three against the machine's noise.
    t_one = statistics.median(timed(lambda: tta_probs(model, image, NUM_CLASSES, **common))[0] for _ in range(3))
    t_all, _ = timed(lambda: tta_probs(model, image, NUM_CLASSES, scales=TTA_SCALES, flips=TTA_FLIPS, **common))
    views = len(TTA_SCALES) * len(TTA_FLIPS)
    print(f"(b) TTA on a {size}^2 image: 1 view {t_one:.2f} s (median of 3), {views} views {t_all:.2f} s")
    print(
        f"    measured time ratio {t_all / t_one:.1f}   expected: area ratio {area_ratio:.1f} "
        f"(3 x sum of scale^2), window-count ratio {window_ratio:.1f} (small views pad up to one window)"
    )


def worker(size: int, args: argparse.Namespace) -> None:
    """Runs in a fresh process: one sliding-window pass; prints time and peak memory as JSON."""
    model = small_unet()
    image = random_image(size)
    # Baseline before any forward pass: the growth then counts activations (constant in image size)
    # plus the probability and weight sums (linear in image size).
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    warm_up(model, args.window, args.batch_size)
    seconds, _ = timed(
        lambda: sliding_window_probs(model, image, NUM_CLASSES, args.window, args.stride, args.batch_size)
    )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "before_mib": before_kib / 1024, "peak_mib": peak_kib / 1024}))


def bench_scaling(args: argparse.Namespace) -> None:
    results = {}
    for size in args.scaling_sizes:
        # A child exec'd straight from this process inherits its ru_maxrss (Linux keeps the exec'ing
        # process's peak), so go through a shell that forks: the worker's figure is then its own.
        command = ["sh", "-c", '"$@"; exit $?', "sh", sys.executable, __file__, "--worker", str(size)]
        command += ["--window", str(args.window), "--stride", str(args.stride), "--batch-size", str(args.batch_size)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[size] = json.loads(out.strip().splitlines()[-1])
    small, large = args.scaling_sizes
    print(f"(c) image size, one fresh process each (window {args.window}, stride {args.stride}):")
    for size, r in results.items():
        windows = window_count(size, size, args.window, args.stride)
        sums_mib = (NUM_CLASSES + 1) * size * size * 4 / 2**20
        print(
            f"    {size}^2: {windows:4d} windows  {r['seconds']:6.2f} s   peak RSS {r['peak_mib']:7.1f} MiB, "
            f"growth over the built model {r['peak_mib'] - r['before_mib']:6.1f} MiB "
            f"(of which probability + weight sums {sums_mib:.0f} MiB)"
        )
    a, b = results[small], results[large]
    windows = window_count(large, large, args.window, args.stride) / window_count(
        small, small, args.window, args.stride
    )
    growth = (b["peak_mib"] - b["before_mib"]) / max(1.0, a["peak_mib"] - a["before_mib"])
    print(
        f"    {large}^2 / {small}^2: area {(large / small) ** 2:.1f}x   windows {windows:.2f}x   "
        f"time {b['seconds'] / a['seconds']:.2f}x   peak RSS {b['peak_mib'] / a['peak_mib']:.2f}x   "
        f"RSS growth {growth:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2, help="alternating (batched, single) pairs in (a)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--size", type=int, default=1024, help="image side in (a)")
    parser.add_argument("--tta-size", type=int, default=512, help="image side in (b)")
    parser.add_argument("--scaling-sizes", type=int, nargs=2, default=(1024, 2048), help="image sides in (c)")
    parser.add_argument("--skip", nargs="*", default=(), choices=("a", "b", "c", "d"), help="parts to skip")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args)
        return
    start = time.perf_counter()
    model = small_unet()
    warm_up(model, args.window, args.batch_size)
    if "a" not in args.skip:
        bench_batching(model, args)
    if "b" not in args.skip:
        bench_tta(model, args)
    if "c" not in args.skip:
        bench_scaling(args)
    if "d" not in args.skip:
        bench_batch_sizes(model, args)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
