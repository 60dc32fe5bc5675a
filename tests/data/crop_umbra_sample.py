"""Write the test crop of the Umbra Mount Yasur sample: a window of the original, georeferencing kept exactly.

python tests/data/crop_umbra_sample.py PATH/TO/umbra_mount_yasur.tiff   # writes tests/data/umbra_mount_yasur_crop.tif
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rasterio
from rasterio.windows import Window

WINDOW = Window(col_off=900, row_off=600, width=600, height=520)
"""Crater floor (dark, about a quarter exact zeros) and the bright rim; neither side a multiple of 64."""
OUTPUT = Path(__file__).with_name("umbra_mount_yasur_crop.tif")


def crop(source: Path, output: Path = OUTPUT, window: Window = WINDOW) -> None:
    """Copy ``window`` of ``source`` to ``output`` (deflate), with the window's exact transform and the CRS."""
    with rasterio.open(source) as src:
        pixels = src.read(1, window=window)
        profile = {
            "driver": "GTiff", "width": window.width, "height": window.height, "count": 1, "dtype": src.dtypes[0],
            "crs": src.crs, "transform": src.window_transform(window), "compress": "deflate", "predictor": 2,
            "zlevel": 9,
        }  # fmt: skip
        tags = src.tags()
    with rasterio.open(output, "w", **profile) as dst:
        dst.write(pixels, 1)
        dst.update_tags(**tags)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the original 2000 x 2000 umbra_mount_yasur.tiff")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    crop(args.source, args.output)
