"""Writing one predicted tile: a georeferenced hard label and its uint8 soft probabilities, as COGs."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from datamodules.cog import class_band, probability_bands, write_cog
from datamodules.rasters import raster_info
from sar_inference.engine import probs_to_label, soft_to_uint8


def write_tile_prediction(probs: Tensor, name: str, grid: str | Path, label_dir: Path, soft_dir: Path | None) -> None:
    """Write ``<label_dir>/<name>`` (uint8 0..8) and ``<soft_dir>/<name>`` (9-band floor(255 p)).

    Both are Cloud-Optimized GeoTIFFs that take the size, CRS and transform of the ``grid`` raster
    (the SAR tile for OEM-SAR optical): the label with the class colours and names and ``mode``
    overviews, the soft map with one band named per class and ``average`` overviews. They are
    written atomically, soft map first, so an existing label means a complete tile.

    Args:
        probs: (C, H, W) class probabilities.
        name: file name of the tile.
        grid: raster whose georeferencing the outputs copy.
        label_dir: folder of the hard labels.
        soft_dir: folder of the soft maps; None for none.
    """
    reference = raster_info(grid)
    where = {"crs": reference.crs, "transform": reference.transform}
    if soft_dir is not None:
        write_cog(soft_dir / name, soft_to_uint8(probs).cpu().numpy(), probability_bands(), **where)
    label = probs_to_label(probs).cpu().numpy()
    if label.shape != reference.shape:
        raise ValueError(f"label shape {label.shape} does not match {reference.path} {reference.shape}")
    write_cog(label_dir / name, label, [class_band("land-cover class (pseudo-label)")], **where)
