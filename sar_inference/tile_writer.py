"""Writing one predicted tile: a georeferenced hard label and its uint8 soft probabilities."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from datamodules.rasters import raster_info, write_label_like, write_raster
from sar_inference.engine import probs_to_label, soft_to_uint8


def write_tile_prediction(probs: Tensor, name: str, grid: str | Path, label_dir: Path, soft_dir: Path | None) -> None:
    """Write ``<label_dir>/<name>`` (uint8 0..8, colour map) and ``<soft_dir>/<name>`` (9-band floor(255 p)).

    Both files take the size, CRS and transform of the ``grid`` raster (the SAR tile for OEM-SAR
    optical) and are written atomically, soft map first, so an existing label means a complete tile.

    Args:
        probs: (C, H, W) class probabilities.
        name: file name of the tile.
        grid: raster whose georeferencing the outputs copy.
        label_dir: folder of the hard labels.
        soft_dir: folder of the soft maps; None for none.
    """
    reference = raster_info(grid)
    if soft_dir is not None:
        soft = soft_to_uint8(probs).cpu().numpy()
        write_raster(soft_dir / name, soft, crs=reference.crs, transform=reference.transform)
    write_label_like(label_dir / name, probs_to_label(probs).cpu().numpy(), reference)
