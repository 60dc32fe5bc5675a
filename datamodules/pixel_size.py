"""A raster's pixel size in metres (rotated grids included), and a warning when it lies far from the training GSD."""

from __future__ import annotations

import math
import warnings

from datamodules.rasters import RasterInfo

FAR_FACTOR = 2.0
"""A pixel size more than this factor outside the training range is "far": a scale the model never saw."""
METRES_PER_DEGREE = 111_320.0
"""Length of one degree of latitude (and of longitude at the equator), for geographic CRSs."""


def pixel_size_m(info: RasterInfo) -> tuple[float, float] | None:
    """(column step, row step) of a raster's pixel grid in metres; None without a CRS or with other units.

    The steps are the lengths of the transform's column and row vectors, so rotated and sheared
    grids (as OEM-SAR's) give their true pixel size. A projected CRS converts its linear unit to
    metres; a geographic one takes degrees at the raster's centre.
    """
    if info.crs is None:
        return None
    t = info.transform
    column, row = math.hypot(t.a, t.d), math.hypot(t.b, t.e)
    if info.crs.is_geographic:
        _, lat = t * (info.width / 2, info.height / 2)
        scale = math.cos(math.radians(lat))
        return math.hypot(t.a * scale, t.d) * METRES_PER_DEGREE, math.hypot(t.b * scale, t.e) * METRES_PER_DEGREE
    try:
        _, factor = info.crs.linear_units_factor
    except Exception:  # rasterio raises CRSError for CRSs without a linear unit
        return None
    return column * factor, row * factor


def warn_if_far_from_training_gsd(info: RasterInfo, training_gsd: tuple[float, float]) -> bool:
    """Warn when a raster's pixel size lies more than :data:`FAR_FACTOR` outside ``training_gsd``; True if it did."""
    size = pixel_size_m(info)
    if size is None:
        return False
    low, high = training_gsd
    gsd = max(size)
    if low / FAR_FACTOR <= min(size) and gsd <= high * FAR_FACTOR:
        return False
    warnings.warn(
        f"{info.path}: pixel size {size[0]:.3g} x {size[1]:.3g} m lies far outside the {low:g}-{high:g} m "
        "the model was trained on; objects appear at a scale it never saw (resample the scene, or expect a "
        "poorer map)",
        stacklevel=2,
    )
    return True
