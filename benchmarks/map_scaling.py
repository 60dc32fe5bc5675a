"""Scaling of ``python cli.py map`` with the scene size: time and peak memory.

Synthetic uint8 SAR scenes (speckled, blocky backscatter, a rotated UTM transform) of each size are
written first; each is then mapped by ``map_scene`` (the function behind ``cli.py map``) in a fresh
process with a random-weight U-Net ResNet-18 (1 channel, the demo model), window 256, stride 128,
block 2048, one TTA view. A fresh process per size makes ``ru_maxrss`` (peak resident memory) its
own; it is started through a forking shell because Linux carries a parent's peak RSS across a
direct exec. The time is that of ``map_scene`` alone (imports and model building excluded).

    python benchmarks/map_scaling.py [--sizes 2048 4096 8192] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from affine import Affine
from rasterio.windows import Window

from datamodules.rasters import geotiff_profile, open_geotiff_writer
from sar_inference.engine import window_positions
from sar_inference.scene_mapper import map_scene, scene_blocks
from sar_inference.settings import InferenceConfig, InferenceOverrides
from sar_studies.checkpoints import sar_checkpoint

WINDOW, STRIDE, BLOCK = 256, 128, 2048
TRANSFORM = Affine(-0.143, -0.577, 337934.5, -0.577, 0.143, 7840518.5)  # rotated, like the Umbra sample


def write_scene(path: Path, size: int) -> None:
    """A size^2 uint8 SAR-like scene, written block by block (never held whole)."""
    rng = np.random.default_rng(size)
    profile = geotiff_profile(size, size, 1, "uint8", crs="EPSG:32759", transform=TRANSFORM)
    with open_geotiff_writer(path, profile) as dst:
        chunk = min(1024, size)  # sizes are multiples of 64
        for top in range(0, size, chunk):
            for left in range(0, size, chunk):
                patches = rng.uniform(20, 200, (chunk // 64, chunk // 64))
                mean = np.kron(patches, np.ones((64, 64)))  # 64-pixel blocks of constant backscatter
                speckle = rng.gamma(2.0, 0.5, (chunk, chunk))
                pixels = np.clip(mean * speckle, 0, 255).astype(np.uint8)[None]
                dst.write(pixels, window=Window(left, top, chunk, chunk))


def window_count(size: int, halo: int) -> int:
    """Windows run for a size^2 scene: per block, the windows of its region (core + halo)."""
    total = 0
    for part in scene_blocks(size, size, BLOCK, halo):
        rows = window_positions(part.region.height, WINDOW, STRIDE)
        cols = window_positions(part.region.width, WINDOW, STRIDE)
        total += len(rows) * len(cols)
    return total


def worker(args: argparse.Namespace) -> None:
    """Runs in a fresh process: maps one scene; prints time and peak memory as JSON."""
    torch.set_num_threads(args.threads)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    inference = InferenceOverrides(window=WINDOW, stride=STRIDE, batch_size=args.batch_size)
    map_scene(args.ckpt, args.scene, args.output, inference=inference, block=BLOCK, progress=False)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "before_mib": before_kib / 1024, "peak_mib": peak_kib / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each map process")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # quiet checkpoint saving
    halo = max((WINDOW - STRIDE) // 2, WINDOW // 8)
    print(f"map: U-Net ResNet-18 (random weights), window {WINDOW}, stride {STRIDE}, block {BLOCK}, halo {halo}, ")
    print(f"     batch_size {args.batch_size}, 1 TTA view, {args.threads} torch thread(s), one fresh process per size")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = sar_checkpoint(Path(tmp) / "sar.ckpt", inference=InferenceConfig(window=WINDOW, stride=STRIDE))
        for size in args.sizes:
            scene = Path(tmp) / f"scene_{size}.tif"
            write_scene(scene, size)
            command = ["sh", "-c", '"$@"; exit $?', "sh", sys.executable, __file__, "--worker"]
            command += ["--ckpt", str(ckpt), "--scene", str(scene), "--output", str(Path(tmp) / f"map_{size}.tif")]
            command += ["--threads", str(args.threads), "--batch-size", str(args.batch_size)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[size] = json.loads(out.strip().splitlines()[-1])
            r = results[size]
            print(
                f"  {size:5d}^2: {len(list(scene_blocks(size, size, BLOCK, halo))):3d} blocks "
                f"{window_count(size, halo):5d} windows  {r['seconds']:7.1f} s  "
                f"{r['seconds'] / size**2 * 1e6:5.2f} s/Mpx"
                f"  peak RSS {r['peak_mib']:7.1f} MiB (before mapping {r['before_mib']:6.1f} MiB)",
                flush=True,
            )
            scene.unlink()
    sizes = list(results)
    for small, large in itertools.pairwise(sizes):
        a, b = results[small], results[large]
        print(
            f"  {large}^2 / {small}^2: area {(large / small) ** 2:.1f}x  "
            f"windows {window_count(large, halo) / window_count(small, halo):.2f}x  "
            f"time {b['seconds'] / a['seconds']:.2f}x  peak RSS {b['peak_mib'] / a['peak_mib']:.2f}x"
        )


if __name__ == "__main__":
    main()
