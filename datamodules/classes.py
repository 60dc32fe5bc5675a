"""The OpenEarthMap land-cover classes: the one place their values, names and colours live."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LandCoverClass:
    """One class of the 9-class OpenEarthMap legend."""

    value: int
    name: str
    colour: str  # "#RRGGBB"

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as an (r, g, b) tuple of 0..255 integers."""
        return tuple(int(self.colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass(0, "Background", "#000000"),
    LandCoverClass(1, "Bareland", "#800000"),
    LandCoverClass(2, "Rangeland", "#00FF24"),
    LandCoverClass(3, "Developed space", "#949494"),
    LandCoverClass(4, "Road", "#FFFFFF"),
    LandCoverClass(5, "Tree", "#226126"),
    LandCoverClass(6, "Water", "#0045FF"),
    LandCoverClass(7, "Agriculture land", "#4BB549"),
    LandCoverClass(8, "Building", "#DE1F07"),
)
NUM_CLASSES: int = len(CLASSES)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
BACKGROUND: int = 0
"""Background / unknown / no-data; the ignore value of stage 2 (SAR on pseudo-labels)."""
PADDING: int = 255
"""Padding label; the ignore value of stage 1 and of every metric."""
SCORED_CLASSES: tuple[int, ...] = tuple(range(1, NUM_CLASSES))
"""Classes averaged by the official mIoU (background is counted, never averaged)."""
VALID_LABEL_VALUES: frozenset[int] = frozenset(range(NUM_CLASSES)) | {PADDING}


def palette() -> np.ndarray:
    """Return a (256, 3) uint8 lookup table from label value to colour (unknown values grey)."""
    table = np.full((256, 3), 128, dtype=np.uint8)
    for c in CLASSES:
        table[c.value] = c.rgb
    table[PADDING] = (0, 0, 0)
    return table


def colourise(label: np.ndarray) -> np.ndarray:
    """Map an (H, W) uint8 label to an (H, W, 3) uint8 RGB image in the class colours."""
    return palette()[np.asarray(label, dtype=np.uint8)]


def rasterio_colormap() -> dict[int, tuple[int, int, int, int]]:
    """Return the class colour map in the form ``rasterio``'s ``write_colormap`` expects."""
    return {c.value: (*c.rgb, 255) for c in CLASSES}
