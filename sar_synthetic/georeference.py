"""Georeferencing of the synthetic tiles: UTM CRSs and transforms of OEM regions and OEM-SAR areas."""

from __future__ import annotations

import numpy as np
from affine import Affine

# OEM region names with the UTM zone (EPSG) and a plausible origin (easting, northing) of each city.
_OEM_REGIONS: tuple[tuple[str, int, float, float], ...] = (
    ("aachen", 32632, 294_000.0, 5_628_000.0),
    ("chiclayo", 32717, 628_000.0, 9_250_000.0),
    ("kyoto", 32653, 608_000.0, 3_876_000.0),
    ("nairobi", 32737, 257_000.0, 9_858_000.0),
    ("christchurch", 32759, 633_000.0, 5_180_000.0),
    ("vienna", 32633, 601_000.0, 5_340_000.0),
    ("austin", 32614, 621_000.0, 3_349_000.0),
    ("accra", 32630, 808_000.0, 617_000.0),
    ("santiago", 32719, 346_000.0, 6_298_000.0),
    ("dhaka", 32646, 235_000.0, 2_626_000.0),
    ("lisbon", 32629, 487_000.0, 4_285_000.0),
    ("zanzibar", 32737, 530_000.0, 9_320_000.0),
)
# OEM-SAR regions: Japan, France, USA, as in the contest.
_SAR_REGIONS: tuple[tuple[int, float, float], ...] = (
    (32654, 384_000.0, 3_950_000.0),
    (32631, 448_000.0, 5_411_000.0),
    (32618, 585_000.0, 4_511_000.0),
)


def oem_region_names(count: int) -> list[str]:
    """Names of the first ``count`` OEM regions (the fixed list, cycled with a numeric suffix)."""
    names = []
    for k in range(count):
        base = _OEM_REGIONS[k % len(_OEM_REGIONS)][0]
        names.append(base if k < len(_OEM_REGIONS) else f"{base}{k // len(_OEM_REGIONS) + 1}")
    return names


def oem_georef(rng: np.random.Generator, region: int, gsd_range: tuple[float, float]) -> tuple[str, Affine]:
    """A UTM CRS and a north-up transform (GSD drawn from ``gsd_range``, metres) for an OEM tile."""
    epsg, east, north = _OEM_REGIONS[region % len(_OEM_REGIONS)][1:]
    gsd = float(rng.uniform(*gsd_range))
    x0, y0 = east + rng.uniform(0, 5_000), north + rng.uniform(0, 5_000)
    return f"EPSG:{epsg}", Affine(gsd, 0.0, x0, 0.0, -gsd, y0)


def sar_georef(
    rng: np.random.Generator, index: int, count: int, gsd_range: tuple[float, float]
) -> tuple[str, Affine, float]:
    """A UTM CRS, a rotated transform (3-15 degrees) and its GSD (from ``gsd_range``) for an OEM-SAR tile."""
    epsg, east, north = _SAR_REGIONS[index * len(_SAR_REGIONS) // max(count, 1)]
    gsd = float(rng.uniform(*gsd_range))
    angle = float(rng.uniform(3.0, 15.0) * rng.choice([-1.0, 1.0]))
    x0, y0 = east + rng.uniform(0, 20_000), north + rng.uniform(0, 20_000)
    transform = Affine.translation(x0, y0) @ Affine.rotation(angle) @ Affine.scale(gsd, -gsd)
    return f"EPSG:{epsg}", transform, gsd
