"""No-data detection on SAR tiles: large zero regions connected to the tile border.

Real SAR (Umbra) holds many exact zeros inside valid areas (about a quarter of the pixels of the
Mount Yasur sample), often chained into long thin clusters, so ``pixel == 0`` is not no-data. The
no-data wedges of rotated acquisitions are solid zero regions touching the border; this detector
keeps only those (docs/method.md section 5, the simple alternative to the reference's learned mask). A
scene's own nodata (its nodata value or mask band) is separate and always honoured by the tools that read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from datamodules.classes import BACKGROUND

# 4-connectivity: solid no-data regions stay 4-connected after the opening, while speckle clumps
# that touch only at a corner stay apart instead of merging into one large "region".
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class NoDataRule:
    """The reference's no-data rule: a tile mostly but not all valid gets class 0 on its no-data region.

    The region is the border-connected solid zero region of at least ``min_area`` pixels; it is
    applied only when the valid fraction is below ``valid_fraction_threshold`` (99.85 %).
    """

    apply: bool = True
    """Set the no-data region to class 0; false leaves every prediction as it is."""
    min_area: int = 10000
    """Smallest no-data region in pixels."""
    valid_fraction_threshold: float = 0.9985
    """Valid fraction below which the region is set to 0."""
    opening: int = 5
    """Side of the square opening that erases speckle zeros before the regions are found (1: none)."""

    def mask(self, sar: np.ndarray) -> np.ndarray:
        """(H, W) bool no-data region of one (H, W) SAR band, empty when the rule does not apply."""
        if not self.apply:
            return np.zeros(sar.shape, dtype=bool)
        region = nodata_mask(sar, self.min_area, opening=self.opening)
        return region if valid_fraction(region) < self.valid_fraction_threshold else np.zeros(sar.shape, dtype=bool)


def nodata_mask(sar: np.ndarray, min_area: int, zero_value: float = 0, opening: int = NoDataRule.opening) -> np.ndarray:
    """Boolean (H, W) mask of the no-data region of a single-band SAR tile.

    A pixel is no-data when it equals ``zero_value`` and belongs to a solid zero region that touches
    the tile border and covers at least ``min_area`` pixels. Solid means it survives a morphological
    opening with an ``opening`` x ``opening`` square, which erases scattered and thinly chained
    speckle zeros; the kept regions are then dilated back by the same square within the raw zeros,
    which restores their edges and corners.

    Args:
        sar: (H, W) SAR amplitude.
        min_area: smallest region (in pixels, measured after the opening) counted as no-data.
        zero_value: the no-data value.
        opening: side of the square structuring element; 1 disables the opening.

    Returns:
        (H, W) bool mask, True on no-data.
    """
    if sar.ndim != 2:
        raise ValueError(f"nodata_mask takes an (H, W) band, got shape {sar.shape}")
    if opening < 1:
        raise ValueError(f"opening must be at least 1, got {opening}")
    if min_area < 0:
        raise ValueError(f"min_area must be non-negative, got {min_area}")
    zeros = sar == zero_value
    square = np.ones((opening, opening), dtype=bool)
    solid = ndimage.binary_opening(zeros, structure=square) if opening > 1 else zeros
    regions, _ = ndimage.label(solid, structure=FOUR_CONNECTED)
    kept = _border_regions(regions, min_area)
    if opening > 1 and kept.any():
        kept = ndimage.binary_dilation(kept, structure=square) & zeros
    return kept


def _border_regions(regions: np.ndarray, min_area: int) -> np.ndarray:
    """Mask of the labelled regions that touch the border and have at least ``min_area`` pixels."""
    areas = np.bincount(regions.ravel())
    on_border = np.zeros_like(areas, dtype=bool)
    on_border[np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]])] = True
    keep = on_border & (areas >= min_area)
    keep[0] = False
    return keep[regions]


def valid_fraction(mask: np.ndarray) -> float:
    """Fraction of pixels that are not no-data."""
    return 1.0 - float(np.mean(mask)) if mask.size else 1.0


def apply_nodata(
    label: np.ndarray, mask: np.ndarray, valid_fraction_threshold: float = NoDataRule.valid_fraction_threshold
) -> np.ndarray:
    """Return a copy of ``label`` set to background (0) on ``mask`` when the tile is mostly but not all valid.

    As in the reference, the mask is applied only when the valid fraction ``1 - mask.mean()`` is below
    ``valid_fraction_threshold`` (99.85 %), so a handful of flagged pixels never changes a prediction.

    Args:
        label: (H, W) label.
        mask: (H, W) bool no-data mask.
        valid_fraction_threshold: apply the mask only below this valid fraction.

    Returns:
        A new (H, W) label array.
    """
    if label.shape != mask.shape:
        raise ValueError(f"label {label.shape} and mask {mask.shape} differ in shape")
    out = label.copy()
    if valid_fraction(mask) < valid_fraction_threshold:
        out[mask.astype(bool)] = BACKGROUND
    return out


class OverviewNoData:
    """The no-data region of a whole scene, found on a reduced overview and applied block by block.

    Border connectivity is a property of the whole scene, which may not fit in memory; so the
    detector runs on a nearest-neighbour overview (exact when the overview is the full scene) and
    each block takes the overview mask at its pixels, restricted to its own zero pixels. The
    99.85 % rule is decided once, for the whole scene.

    Args:
        overview: (h, w) band of the scene read at reduced size.
        scene_shape: (H, W) of the full scene.
        rule: the minimum area (in full-scene pixels, scaled to the overview), threshold and opening.
        zero_value: the no-data value.
    """

    def __init__(
        self,
        overview: np.ndarray,
        scene_shape: tuple[int, int],
        rule: NoDataRule = NoDataRule(),
        zero_value: float = 0,
    ) -> None:
        self.scene_shape = scene_shape
        self.zero_value = zero_value
        scale = overview.size / (scene_shape[0] * scene_shape[1])
        min_area = round(rule.min_area * scale)
        self.mask = nodata_mask(overview, min_area=min_area, zero_value=zero_value, opening=rule.opening)
        self.active = rule.apply and valid_fraction(self.mask) < rule.valid_fraction_threshold

    def block_mask(self, sar: np.ndarray, row_off: int, col_off: int) -> np.ndarray:
        """(h, w) bool no-data mask of the (h, w) block of the scene starting at (row_off, col_off)."""
        if not self.active:
            return np.zeros(sar.shape, dtype=bool)
        (height, width), (oh, ow) = self.scene_shape, self.mask.shape
        rows = (np.arange(row_off, row_off + sar.shape[0]) * oh) // height
        cols = (np.arange(col_off, col_off + sar.shape[1]) * ow) // width
        return self.mask[np.ix_(rows, cols)] & (sar == self.zero_value)
