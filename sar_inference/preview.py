"""A quick-look PNG of a map: the SAR scene (grey) beside the coloured classes, with a legend.

Both rasters are read at reduced size (nearest neighbour), so a preview of any scene costs little
memory. Drawn with numpy and Pillow (matplotlib is not a dependency).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from datamodules.classes import CLASSES, colourise
from datamodules.rasters import overview_shape, raster_info, read_raster, write_png

GAP = 8
"""White pixels between the panels and around the legend."""


def stretch_grey(band: np.ndarray) -> np.ndarray:
    """(H, W) band to (H, W, 3) uint8 grey, stretched between its 2nd and 98th percentiles."""
    values = band.astype(np.float32)
    lo, hi = np.percentile(values, (2, 98)) if values.size else (0.0, 1.0)
    scaled = np.clip((values - lo) / max(float(hi - lo), 1e-6), 0, 1) * 255
    return np.repeat(scaled.astype(np.uint8)[..., None], 3, axis=2)


def legend(width: int) -> Image.Image:
    """A white strip of ``width`` pixels listing every class as a colour square and its name."""
    swatch = max(12, width // 100)  # text and squares grow with the preview
    font = ImageFont.load_default(size=swatch)
    entry = swatch + 6 + max(int(font.getlength(f"{c.value} {c.name}")) for c in CLASSES) + 2 * GAP
    per_row = max(1, (width - GAP) // entry)
    rows = -(-len(CLASSES) // per_row)
    strip = Image.new("RGB", (width, GAP + rows * (swatch + GAP)), "white")
    draw = ImageDraw.Draw(strip)
    for i, cls in enumerate(CLASSES):
        x, y = GAP + (i % per_row) * entry, GAP + (i // per_row) * (swatch + GAP)
        draw.rectangle((x, y, x + swatch - 1, y + swatch - 1), fill=cls.rgb, outline=(96, 96, 96))
        draw.text((x + swatch + 6, y + swatch // 2), f"{cls.value} {cls.name}", fill="black", font=font, anchor="lm")
    return strip


def write_preview(
    path: str | os.PathLike, scene: str | os.PathLike, label_map: str | os.PathLike, max_side: int = 1024
) -> Path:
    """Write ``path``: the scene's first band (grey) and the map's classes side by side, legend below.

    Args:
        path: the PNG to write (atomically).
        scene: the SAR raster.
        label_map: the class map on the scene's grid (band 1 = classes).
        max_side: the longer side of each panel, in pixels.
    """
    info = raster_info(scene)
    shape = overview_shape(info.height, info.width, max_side)
    sar = read_raster(scene, out_shape=shape)[0]
    classes = read_raster(label_map, out_shape=shape)[0]
    spacer = np.full((shape[0], GAP, 3), 255, dtype=np.uint8)
    panels = np.concatenate([stretch_grey(sar), spacer, colourise(classes)], axis=1)
    key = legend(panels.shape[1])
    canvas = Image.new("RGB", (panels.shape[1], panels.shape[0] + key.height), "white")
    canvas.paste(Image.fromarray(panels), (0, 0))
    canvas.paste(key, (0, panels.shape[0]))
    return write_png(path, np.asarray(canvas))
