"""What a map's overviews cost (file size, time) and what they save when a viewer draws the whole map small.

1. A 2048^2 scene is mosaicked from SAR tiles (``--sar-dir``, e.g. the demo's train tiles) and mapped
   with ``--ckpt`` (a trained model: its maps have the structure real maps have) with a confidence
   band, twice with overviews and twice without, alternating: the whole ``map`` time and file size.
2. The class and confidence bands of that map, mirrored 4 x 4 into an 8192^2 map, are written the
   way ``map`` writes (2048^2 blocks) as: the tiled GeoTIFF ``map`` wrote before COGs, a COG without
   overviews, a COG with overviews (mode for classes, average for confidence; from factor 4, the
   default), one with nearest, and one with every level from factor 2.
3. GDAL's ``gdal_translate -outsize 1024 0`` (a stand-in for QGIS drawing the whole map) renders
   the 8192^2 COG with and without overviews, alternating 3 times: bytes the process read
   (``rchar`` of /proc, the reaped child's counters in its shell) and wall time.

    python benchmarks/map_overviews.py --ckpt CKPT --sar-dir data/demo/OpenEarthMap-SAR/train/sar_images
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
from affine import Affine
from rasterio.windows import Window

from datamodules.cog import BandSpec, class_band, open_cog_writer
from datamodules.rasters import geotiff_profile, open_geotiff_writer, read_raster, write_raster
from datamodules.sar_scaling import SARScaling, ScaledSAR
from sar_inference.predictor import load_predictor
from sar_inference.scene_mapper import OverviewSettings, map_with_predictor

SIDE, BIG, BLOCK = 2048, 8192, 2048
WHERE = {"crs": "EPSG:32633", "transform": Affine(0.5, 0, 4e5, 0, -0.5, 5e6)}


def mosaic(sar_dir: Path, path: Path) -> Path:
    """A SIDE^2 scene of the folder's tiles side by side (flipped on every second pass so none repeats as is)."""
    tiles = [read_raster(p)[0] for p in sorted(sar_dir.glob("*.tif"))]
    side = tiles[0].shape[0]
    per_row = SIDE // side
    rows = []
    for r in range(per_row):
        row = []
        for c in range(per_row):
            index = r * per_row + c
            tile = tiles[index % len(tiles)][:side, :side]
            row.append(tile[:, ::-1] if (index // len(tiles)) % 2 else tile)
        rows.append(np.concatenate(row, axis=1))
    write_raster(path, np.concatenate(rows, axis=0), **WHERE)
    return path


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20


def mirrored(band: np.ndarray, top: int, left: int, block: int) -> np.ndarray:
    """The block at (top, left) of ``band`` mirrored into a BIG^2 plane (reflected copies, no seam repeats)."""
    side = band.shape[0]
    rows = [(y // side, y % side) for y in range(top, top + block)]
    cols = [(x // side, x % side) for x in range(left, left + block)]
    ys = [s if k % 2 == 0 else side - 1 - s for k, s in rows]
    xs = [s if k % 2 == 0 else side - 1 - s for k, s in cols]
    return band[np.ix_(ys, xs)]


def _write_blocks(dst: object, bands: np.ndarray, blocks: list[tuple[int, int]]) -> None:
    for top, left in blocks:
        for number in (1, 2):
            dst.write(mirrored(bands[number - 1], top, left, BLOCK), number, window=Window(left, top, BLOCK, BLOCK))


def write_big(path: Path, bands: np.ndarray, how: str) -> float:
    """Seconds to write the BIG^2 two-band map block by block: ``plain`` GeoTIFF, or COG ``none|mode|nearest``
    (overviews from factor 4, the default) or ``mode_from_2`` (every level, from factor 2)."""
    blocks = [(t, l) for t in range(0, BIG, BLOCK) for l in range(0, BIG, BLOCK)]  # noqa: E741
    start = time.perf_counter()
    if how == "plain":
        profile = geotiff_profile(BIG, BIG, 2, "uint8", **WHERE)
        with open_geotiff_writer(path, profile, colormap=True) as dst:
            for top, left in blocks:
                for number in (1, 2):
                    dst.write(
                        mirrored(bands[number - 1], top, left, BLOCK), number, window=Window(left, top, BLOCK, BLOCK)
                    )
    else:
        specs = [class_band(resampling="nearest" if how == "nearest" else "mode"), BandSpec("confidence", "average")]
        first = {"first_overview": 2} if how == "mode_from_2" else {}
        with open_cog_writer(path, height=BIG, width=BIG, dtype="uint8", bands=specs, nodata=0,
                             overviews=how != "none", **first, **WHERE) as dst:  # fmt: skip
            for top, left in blocks:
                for number in (1, 2):
                    dst.write(
                        mirrored(bands[number - 1], top, left, BLOCK), number, window=Window(left, top, BLOCK, BLOCK)
                    )
    return time.perf_counter() - start


def render(path: Path, out: Path) -> tuple[int, float]:
    """(bytes read, wall seconds) of ``gdal_translate -outsize 1024 0`` of ``path`` to a PNG."""
    script = f'gdal_translate -q -of PNG -outsize 1024 0 "{path}" "{out}" && grep "^rchar" /proc/$$/io'
    start = time.perf_counter()
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a trained SAR checkpoint")
    parser.add_argument("--sar-dir", required=True, type=Path, help="SAR tiles to mosaic into the scene")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        scene = ScaledSAR(mosaic(args.sar_dir, work / "scene.tif"), SARScaling())
        predictor = load_predictor(args.ckpt)
        times: dict[bool, list[float]] = {True: [], False: []}
        for repeat in range(args.repeats):
            for build in (True, False) if repeat % 2 == 0 else (False, True):
                start = time.perf_counter()
                map_with_predictor(predictor, scene, work / f"map_{build}.tif", confidence=True, progress=False,
                                   overviews=OverviewSettings(build=build), qgis_style=False)  # fmt: skip
                times[build].append(time.perf_counter() - start)
        with_ovr, without = statistics.median(times[True]), statistics.median(times[False])
        size_with, size_without = size_mb(work / "map_True.tif"), size_mb(work / "map_False.tif")
        print(f"1. map of a {SIDE}^2 scene (classes + confidence), {args.repeats} runs each, alternating:")
        print(
            f"   with overviews {with_ovr:.1f} s, {size_with:.2f} MiB; without {without:.1f} s, {size_without:.2f} MiB"
        )
        spread = f"runs {[round(t, 1) for t in times[True]]} s vs {[round(t, 1) for t in times[False]]} s"
        print(f"   overviews add {100 * (with_ovr / without - 1):+.1f} % time ({spread}), "
              f"{100 * (size_with / size_without - 1):+.1f} % size")  # fmt: skip

        bands = read_raster(work / "map_True.tif")
        print(f"2. writing an {BIG}^2 map (the 2048^2 map mirrored 4 x 4) in {BLOCK}^2 blocks:")
        results = {}
        for how in ("plain", "none", "mode", "nearest", "mode_from_2"):
            seconds = write_big(work / f"big_{how}.tif", bands, how)
            results[how] = (seconds, size_mb(work / f"big_{how}.tif"))
            print(f"   {how:<11} {seconds:6.1f} s  {results[how][1]:7.2f} MiB")
        for how in ("mode", "nearest", "mode_from_2"):
            seconds, size = results[how]
            print(f"   COG + {how} overviews vs the COG without: size {100 * (size / results['none'][1] - 1):+.1f} %, "
                  f"write time {100 * (seconds / results['none'][0] - 1):+.1f} %; vs the plain GeoTIFF: size "
                  f"{100 * (size / results['plain'][1] - 1):+.1f} %, write time "
                  f"{100 * (seconds / results['plain'][0] - 1):+.1f} %")  # fmt: skip

        print(f"3. gdal_translate -outsize 1024 0 of the {BIG}^2 map, 3 runs each, alternating:")
        labels = {"mode": "with overviews", "mode_from_2": "every level", "none": "without overviews"}
        runs: dict[str, list[tuple[int, float]]] = {how: [] for how in labels}
        for repeat in range(3):
            for how in labels if repeat % 2 == 0 else reversed(labels):
                runs[how].append(render(work / f"big_{how}.tif", work / f"render_{how}.png"))
        for how, label in labels.items():
            read = statistics.median(b for b, _ in runs[how]) / 2**20
            wall = statistics.median(s for _, s in runs[how])
            print(f"   {label:<18} read {read:8.2f} MiB  {wall:6.2f} s  (file {results[how][1]:.2f} MiB)")


if __name__ == "__main__":
    main()
