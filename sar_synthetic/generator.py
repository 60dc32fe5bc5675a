"""A seeded miniature of OpenEarthMap (optical) and OpenEarthMap-SAR, in the official layouts.

It is the project's embedded default dataset: nothing is downloaded. One scene generator draws
land-cover layouts (parcels of fields, rangeland, bareland and developed blocks; rotated buildings
in streets; tree clusters; rivers and ponds; crossing roads). Each scene is rendered as

* a sharp optical image (OpenEarthMap style),
* an optical image in the OpenEarthMap-SAR style: another season and colour balance, haze and a
  lower effective resolution drawn per tile (by default r ~ U(0.4, 1.0) of its source's pixels: the range
  the reference resolution alignment augmentation was designed for, U(0.1, 0.35) of a 1024 px
  tile, scaled to the miniature's content, see ``optical_resolution_range``), all scaled by
  ``domain_gap`` (0 renders exactly like OEM),
* a SAR amplitude image: class-dependent backscatter, double-bounce building edges and radar
  shadows, multiplicative gamma speckle, a per-tile relative 8-bit scaling with ~10-22 % exact
  zeros inside the valid area (the real Umbra sample in ``shared/real_samples`` has ~24 %), and
  black border-connected no-data wedges on some test tiles.

OEM-SAR tiles also have the real data's scale gap (METHOD.md: OEM 0.25-0.5 m, OEM-SAR 0.15-0.5 m
GSD). The miniature's native pixel is an OEM pixel. Each OEM-SAR tile draws its grid GSD g and the
GSD g_o of its optical source (OEM-like); the scene is drawn at the native scale, its optical image
is rendered there and resampled onto the grid, g_o / g = 0.5-3.3 times enlarged, and the SAR and the
labels are rendered on the grid (``sar_content_scale``, ``oem_gsd_range``, ``sar_gsd_range``).

The OEM-SAR train labels are a stand-in for the official pseudo-labels: the truth corrupted by
whole-object class confusions, smoothing, boundary bleeding, wrong patches, a small misregistration
and a little class 0 (``_corrupt_labels``). The truth stays available in ``train/labels_truth``.
The demo pipeline replaces these labels by a source-only optical model's prediction, which is how
the real ones were made (``pipeline/official_labels.py``); the noise model stays the quick default
and the knob of the label-noise sweep.

Layout under the data root (one root holds both datasets)::

    OpenEarthMap/<region>/images/<region>_<n>.tif     3-band RGB, UTM CRS, north-up
    OpenEarthMap/<region>/labels/<region>_<n>.tif     clean labels 0..8
    OpenEarthMap/{train,val,test}.txt                 file names, ~60/20/20
    OpenEarthMap-SAR/train/sar_images/TrainArea_###.tif   1-band SAR, UTM CRS, rotated transform
    OpenEarthMap-SAR/train/rgb_images/TrainArea_###.tif   optical, same grid (last tile missing)
    OpenEarthMap-SAR/train/labels/TrainArea_###.tif       noisy labels, no CRS
    OpenEarthMap-SAR/train/labels_truth/TrainArea_###.tif clean truth (demo-only extra)
    OpenEarthMap-SAR/val/{sar_images,rgb_images,labels}/ValArea_###.tif    clean labels
    OpenEarthMap-SAR/test/{sar_images,labels}/TestArea_###.tif             clean labels, 0 in wedges
    SYNTHETIC.json                                    the config; marks the dataset complete

The last train tile deliberately has no RGB partner so that loaders can be tested to skip it with a
warning. Water is dark in SAR (~80 % exact zeros, rarely a solid zero block of a few % of a tile, as
calm water in real data); no-data wedges are solid, straight-edged, cut at a corner, 5-30 % of a tile.

Measured with the default config (``python benchmarks/synthetic_data_check.py``, seeds 0 and 1, on a
2-core machine shared with two training runs): generation 9-13 s. Class shares of the truth:
bareland ~3-6 %, rangeland ~19-20 %, developed ~17-20 %, road ~9 %, tree ~14-19 %, water ~4 %,
agriculture ~17-22 %, building ~8-9 %.
Noisy train labels agree with the truth on ~63-65 % of the pixels (mIoU 0.50-0.51 against it). A
nearest-class-mean classifier on 5x5-averaged SAR reaches val mIoU 0.19-0.25 (pixel accuracy
29-36 %; chance ~0.06): buildings are easy, rangeland/agriculture and road/bareland are not.
An RGB nearest-class-mean classifier fitted on OEM train reaches mIoU 0.43-0.47 on OEM val but
0.25-0.32 on the OEM-SAR train optical images (0.40-0.41 with ``domain_gap=0``); their mean
neighbour difference ("sharpness") is 0.35-0.36 of OEM's (1.0-1.1 with ``domain_gap=0``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
from affine import Affine
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.special import ndtri
from tqdm import tqdm

from datamodules.classes import BACKGROUND, CLASSES, NUM_CLASSES
from datamodules.layout import SYNTHETIC_MARKER
from datamodules.output_safety import Output, check_outputs
from datamodules.rasters import write_raster

MARKER = SYNTHETIC_MARKER
OEM_DIR = "OpenEarthMap"
SAR_DIR = "OpenEarthMap-SAR"

_VALUE = {c.name: c.value for c in CLASSES}
_BARE, _RANGE, _DEVELOPED, _ROAD = (_VALUE[n] for n in ("Bareland", "Rangeland", "Developed space", "Road"))
_TREE, _WATER, _AGRI, _BUILDING = (_VALUE[n] for n in ("Tree", "Water", "Agriculture land", "Building"))


@dataclass(frozen=True)
class SyntheticConfig:
    """Size, seed and difficulty of the synthetic OEM + OEM-SAR data set.

    Attributes:
        seed: master seed; every tile draws from its own stream seeded by (seed, dataset, index).
        tile_size: side of the OEM-SAR tiles and of most OEM tiles (a few OEM tiles are 3/4 of it).
        oem_regions: number of OEM regions (city names cycled from a fixed list).
        oem_tiles_per_region: OEM tiles per region.
        sar_train_tiles: OEM-SAR train tiles (the last one has no RGB partner).
        sar_val_tiles: OEM-SAR val tiles.
        sar_test_tiles: OEM-SAR test tiles.
        speckle_looks: looks of the gamma speckle (lower = noisier SAR).
        label_noise: strength of the corruption of the OEM-SAR train labels (0 = clean copies,
            0.3 = ~60-65 % pixel agreement, 1 = ~25 %).
        domain_gap: 0 renders the OEM-SAR optical images exactly like OEM, at the same scale; 1 is
            the default gap (style, resolution and scale).
        optical_resolution_range: range of the effective resolution r of an OEM-SAR optical tile
            relative to the pixels of its optical source, before the source is resampled onto the SAR
            grid (r = 0.1: a 10x coarser image), drawn per tile, uniformly. The only statement of
            the real OEM vs OEM-SAR optical resolution gap we found is the target of the reference
            RAA (StuLiu/DFC2025Track1, ``RandomDownUp(ratio_range=(0.1, 0.35))``), relative to the
            pixels of 1024 px tiles.
            The miniature draws a real tile's content into 256 px (roads 3-7 px wide instead of
            20-40 px), so the same loss of content is r x 4, capped at 1: the default (0.4, 1.0).
            (0.1, 0.35) applies the reference range per pixel, which blurs away what a real tile
            keeps. The blur factor is ``1 + domain_gap * (1 / r - 1)``, so ``domain_gap=0`` stays sharp.
        nodata_test_fraction: fraction of the test SAR tiles with a black no-data wedge.
        oem_gsd_range: GSD range of OpenEarthMap (metres, METHOD.md): the OEM tiles' geotransforms
            and the optical source of every OEM-SAR tile. The miniature's native pixel is an OEM pixel.
        sar_gsd_range: GSD range of the OEM-SAR grids (metres, METHOD.md). Each OEM-SAR tile draws
            its grid GSD g and an optical source GSD g_o from ``oem_gsd_range``; its scene appears
            ``1 + domain_gap * (g_o / g - 1)`` times larger than at the native scale (0.5-3.3 with the
            defaults: the scale gap that RAA's enlargement u ~ U(1, 3) models), and its optical
            image is rendered at the native scale and resampled onto the grid.
    """

    seed: int = 0
    tile_size: int = 256
    oem_regions: int = 4
    oem_tiles_per_region: int = 4
    sar_train_tiles: int = 32
    sar_val_tiles: int = 16
    sar_test_tiles: int = 8
    speckle_looks: float = 2.0
    label_noise: float = 0.3
    domain_gap: float = 1.0
    optical_resolution_range: tuple[float, float] = (0.4, 1.0)
    nodata_test_fraction: float = 0.35
    oem_gsd_range: tuple[float, float] = (0.25, 0.5)
    sar_gsd_range: tuple[float, float] = (0.15, 0.5)

    @classmethod
    def tiny(cls) -> SyntheticConfig:
        """The smallest useful dataset (64 px tiles, a handful of each): tests and quick checks."""
        return cls(seed=1, tile_size=64, oem_regions=2, oem_tiles_per_region=3, sar_train_tiles=6, sar_val_tiles=2,
                   sar_test_tiles=3)  # fmt: skip

    def __post_init__(self) -> None:
        counts = (
            self.oem_regions,
            self.oem_tiles_per_region,
            self.sar_train_tiles,
            self.sar_val_tiles,
            self.sar_test_tiles,
        )
        problems = [
            (self.seed < 0, f"seed must be >= 0, got {self.seed}"),
            (self.tile_size < 32, f"tile_size must be >= 32, got {self.tile_size}"),
            (min(counts) < 0, f"tile and region counts must be >= 0, got {counts}"),
            (self.speckle_looks <= 0, f"speckle_looks must be > 0, got {self.speckle_looks}"),
            (self.label_noise < 0, f"label_noise must be >= 0, got {self.label_noise}"),
            (self.domain_gap < 0, f"domain_gap must be >= 0, got {self.domain_gap}"),
            (
                len(self.optical_resolution_range) != 2
                or not 0 < self.optical_resolution_range[0] <= self.optical_resolution_range[-1] <= 1,
                f"optical_resolution_range must be (low, high) with 0 < low <= high <= 1, "
                f"got {self.optical_resolution_range}",
            ),
            *(
                (
                    len(value) != 2 or not 0 < value[0] <= value[-1],
                    f"{name} must be (low, high) in metres with 0 < low <= high, got {value}",
                )
                for name, value in (("oem_gsd_range", self.oem_gsd_range), ("sar_gsd_range", self.sar_gsd_range))
            ),
            (
                not 0 <= self.nodata_test_fraction <= 1,
                f"nodata_test_fraction must be in [0, 1], got {self.nodata_test_fraction}",
            ),
        ]
        errors = [message for failed, message in problems if failed]
        if errors:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(errors))


# ----------------------------------------------------------------------------- georeferencing

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
_DATASET_CODES = {"oem": 1, "train": 2, "val": 3, "test": 4, "split": 5}
_SAR_PREFIX = {"train": "TrainArea", "val": "ValArea", "test": "TestArea"}


def _rng(seed: int, dataset: str, index: int, purpose: int) -> np.random.Generator:
    """A generator seeded by (seed, dataset, tile index, purpose), independent of global state."""
    return np.random.default_rng([seed, _DATASET_CODES[dataset], index, purpose])


def oem_region_names(count: int) -> list[str]:
    """Names of the first ``count`` OEM regions (the fixed list, cycled with a numeric suffix)."""
    names = []
    for k in range(count):
        base = _OEM_REGIONS[k % len(_OEM_REGIONS)][0]
        names.append(base if k < len(_OEM_REGIONS) else f"{base}{k // len(_OEM_REGIONS) + 1}")
    return names


def _oem_georef(rng: np.random.Generator, region: int, gsd_range: tuple[float, float]) -> tuple[str, Affine]:
    """A UTM CRS and a north-up transform (GSD drawn from ``gsd_range``, metres) for an OEM tile."""
    epsg, east, north = _OEM_REGIONS[region % len(_OEM_REGIONS)][1:]
    gsd = float(rng.uniform(*gsd_range))
    x0, y0 = east + rng.uniform(0, 5_000), north + rng.uniform(0, 5_000)
    return f"EPSG:{epsg}", Affine(gsd, 0.0, x0, 0.0, -gsd, y0)


def _sar_georef(
    rng: np.random.Generator, index: int, count: int, gsd_range: tuple[float, float]
) -> tuple[str, Affine, float]:
    """A UTM CRS, a rotated transform (3-15 degrees) and its GSD (from ``gsd_range``) for an OEM-SAR tile."""
    epsg, east, north = _SAR_REGIONS[index * len(_SAR_REGIONS) // max(count, 1)]
    gsd = float(rng.uniform(*gsd_range))
    angle = float(rng.uniform(3.0, 15.0) * rng.choice([-1.0, 1.0]))
    x0, y0 = east + rng.uniform(0, 20_000), north + rng.uniform(0, 20_000)
    transform = Affine.translation(x0, y0) @ Affine.rotation(angle) @ Affine.scale(gsd, -gsd)
    return f"EPSG:{epsg}", transform, gsd


# ----------------------------------------------------------------------------- array helpers


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-6)


def _shift(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Return ``out`` with ``out[y, x] = array[y - dy, x - dx]``, zero (False) outside."""
    out = np.zeros_like(array)
    h, w = array.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = array[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of a size x size tile, as float32."""
    yy, xx = np.mgrid[0:size, 0:size]
    return yy.astype(np.float32), xx.astype(np.float32)


def _components(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected regions of equal class: an id map (0..n-1) and the class of every id."""
    ids = np.zeros(label.shape, np.int32)
    classes = []
    offset = 0
    for value in np.unique(label):
        comp, n = ndimage.label(label == value)
        inside = comp > 0
        ids[inside] = comp[inside] + offset - 1
        classes.append(np.full(n, value, np.uint8))
        offset += n
    return ids, np.concatenate(classes)


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (C, H, W) float image to (C, *shape), pixel centres aligned."""
    h, w = image.shape[1:]
    ys = (np.arange(shape[0], dtype=np.float32) + 0.5) * h / shape[0] - 0.5
    xs = (np.arange(shape[1], dtype=np.float32) + 0.5) * w / shape[1] - 0.5
    coords = np.stack(np.meshgrid(ys, xs, indexing="ij"))
    return np.stack([ndimage.map_coordinates(band, coords, order=1, mode="nearest") for band in image])


def _resample(image: np.ndarray, size: int) -> np.ndarray:
    """Resample a (C, h, w) float image onto a size x size grid: bilinear, Gaussian pre-filtered
    when shrinking (as a coarser sensor would integrate), pixel centres aligned; unchanged if
    already that size."""
    if image.shape[1:] == (size, size):
        return image
    factor = image.shape[1] / size
    if factor > 1:
        image = ndimage.gaussian_filter(image, (0, 0.5 * factor, 0.5 * factor), mode="nearest")
    return _resize(image, (size, size))


def _resample_label(label: np.ndarray, size: int) -> np.ndarray:
    """Resample an (h, w) label onto a size x size grid on the same footprint as ``_resample``:
    the class whose resampled indicator is largest, so boundaries stay smooth when enlarged."""
    indicators = np.stack([label == v for v in range(NUM_CLASSES)]).astype(np.float32)
    return _resample(indicators, size).argmax(0).astype(np.uint8)


def _fill_from_nearest(label: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace the pixels under ``mask`` by the label of the nearest pixel outside it."""
    if not mask.any() or mask.all():
        return label
    _, (iy, ix) = ndimage.distance_transform_edt(mask, return_indices=True)
    return label[iy, ix]


def _segment_distance(yy: np.ndarray, xx: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the line segment from point p to point q (row, col)."""
    d = q - p
    t = np.clip(((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / float(d @ d), 0.0, 1.0)
    return np.hypot(yy - (p[0] + t * d[0]), xx - (p[1] + t * d[1]))


# ----------------------------------------------------------------------------- scene generator

# Parcel kinds: what fills a Voronoi cell before roads, trees and water are laid over it.
_KIND_CLASS = np.array([_AGRI, _RANGE, _BARE, _DEVELOPED, _RANGE], np.uint8)  # 4 = forest on rangeland
_AGRI_KIND, _RANGE_KIND, _BARE_KIND, _DEV_KIND, _FOREST_KIND = range(5)
_KIND_TREE_FRACTION = np.array([0.02, 0.22, 0.04, 0.1, 0.8])
_KIND_BUILDING_KEEP = np.array([0.03, 0.05, 0.0, 0.9, 0.0])
_CHARACTERS = {  # parcel-kind probabilities of urban, suburban and rural tiles
    "urban": (0.05, 0.16, 0.06, 0.65, 0.08),
    "suburban": (0.2, 0.25, 0.05, 0.38, 0.12),
    "rural": (0.42, 0.32, 0.05, 0.06, 0.15),
}


def _parcels(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """Voronoi parcels with slightly irregular boundaries: an (H, W) map of parcel ids."""
    seeds = rng.uniform(0, size, (count, 2))
    yy, xx = _grid(size)
    warp = 4.0 * np.stack([_smooth_noise(rng, (size, size), 10.0) for _ in range(2)])
    points = np.stack([yy + warp[0], xx + warp[1]], -1).reshape(-1, 2)
    _, nearest = cKDTree(seeds).query(points)
    return nearest.reshape(size, size).astype(np.int32)


def _parcel_edges(parcels: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Pixels on a boundary between two different parcels that are both ``inside`` the mask."""
    edges = np.zeros(parcels.shape, bool)
    across_x = (parcels[:, 1:] != parcels[:, :-1]) & inside[:, 1:] & inside[:, :-1]
    across_y = (parcels[1:] != parcels[:-1]) & inside[1:] & inside[:-1]
    edges[:, 1:] |= across_x
    edges[:, :-1] |= across_x
    edges[1:] |= across_y
    edges[:-1] |= across_y
    return edges


def _buildings(rng: np.random.Generator, parcels: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotated rectangular buildings on a per-parcel street lattice.

    Every parcel gets a lattice orientation and cell size; each lattice cell holds at most one
    building, kept with the parcel's probability ``keep``. Every few rows and columns of cells a
    street runs along the cell border. Returns (building mask, street mask).
    """
    size = parcels.shape[0]
    n = len(keep)
    theta = rng.uniform(0, np.pi / 2, n).astype(np.float32)[parcels]
    spacing = rng.uniform(15.0, 22.0, n).astype(np.float32)[parcels]
    offset = rng.uniform(0, 30.0, (2, n)).astype(np.float32)[:, parcels]
    street_every = rng.integers(3, 6, (2, n))[:, parcels]
    yy, xx = _grid(size)
    u = (xx * np.cos(theta) + yy * np.sin(theta) + offset[0]) / spacing
    v = (-xx * np.sin(theta) + yy * np.cos(theta) + offset[1]) / spacing
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    lu, lv = u - iu, v - iv
    # Per-cell attributes from a small random table indexed by a hash of (parcel, cell).
    table = rng.uniform(0, 1, (5, 4096)).astype(np.float32)
    key = (iu * 73_856_093 ^ iv * 19_349_663 ^ parcels.astype(np.int64) * 83_492_791) % 4096
    kept, half_u, half_v, jitter_u, jitter_v = table[:, key]
    half_u = 0.22 + 0.14 * half_u
    half_v = 0.22 + 0.14 * half_v
    margin = 0.5 - 1.5 / spacing  # leaves a gap of at least 1.5 px between neighbours
    cu = 0.5 + (jitter_u - 0.5) * 2 * np.maximum(margin - half_u, 0)
    cv = 0.5 + (jitter_v - 0.5) * 2 * np.maximum(margin - half_v, 0)
    street_u = (np.mod(iu, street_every[0]) == 0) & (lu < 4.5 / spacing)
    street_v = (np.mod(iv, street_every[1]) == 0) & (lv < 4.5 / spacing)
    street_cell = (np.mod(iu, street_every[0]) == 0) | (np.mod(iv, street_every[1]) == 0)
    building = (kept < keep[parcels]) & (np.abs(lu - cu) <= half_u) & (np.abs(lv - cv) <= half_v)
    building &= ~((street_u | street_v) & (keep[parcels] > 0.5))
    building &= ~(street_cell & (keep[parcels] > 0.5) & (kept > 0.9 * keep[parcels]))
    return building, (street_u | street_v)


def _tree_cover(rng: np.random.Generator, parcels: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Tree clusters: thresholded smooth noise with a per-parcel target cover fraction."""
    size = parcels.shape[0]
    field = 0.8 * _smooth_noise(rng, (size, size), 4.0) + 0.6 * _smooth_noise(rng, (size, size), 1.5)
    field /= np.hypot(0.8, 0.6)
    cover = np.clip(fraction * rng.uniform(0.6, 1.4, len(fraction)), 1e-4, 0.98)
    return field > ndtri(1.0 - cover).astype(np.float32)[parcels]


def _water(rng: np.random.Generator, size: int) -> np.ndarray:
    """A river band, a pond, or nothing."""
    yy, xx = _grid(size)
    kind = rng.random()
    if kind < 0.35:
        angle = rng.uniform(0, np.pi)
        along = xx * np.cos(angle) + yy * np.sin(angle)
        across = -xx * np.sin(angle) + yy * np.cos(angle)
        centre = -size / 2 * np.sin(angle) + size / 2 * np.cos(angle) + rng.uniform(-size / 3, size / 3)
        wavelength, phase = rng.uniform(120, 400), rng.uniform(0, 2 * np.pi)
        meander = rng.uniform(5, 30) * np.sin(2 * np.pi * along / wavelength + phase)
        meander += rng.uniform(0, 10) * np.sin(2 * np.pi * along / (0.37 * wavelength) + 2 * phase)
        width = rng.uniform(8, 26) * (1 + 0.15 * np.sin(2 * np.pi * along / (wavelength / 2.3)))
        return np.abs(across - centre - meander) < width / 2
    if kind < 0.7:
        cy, cx = rng.uniform(0, size, 2)
        radius = rng.uniform(10, 32)
        rough = _smooth_noise(rng, (size, size), 6.0)
        return np.hypot(yy - cy, xx - cx) / radius + 0.2 * rough < 1.0
    return np.zeros((size, size), bool)


def _roads(rng: np.random.Generator, size: int) -> np.ndarray:
    """A few straight or bent roads, 3-7 px wide, crossing the tile."""
    yy, xx = _grid(size)
    road = np.zeros((size, size), bool)
    count = max(1, round(rng.uniform(0.6, 2.6) * size / 256))
    for _ in range(count):
        middle = rng.uniform(0.15 * size, 0.85 * size, 2)
        a1 = rng.uniform(0, 2 * np.pi)
        a2 = a1 + np.pi + (rng.uniform(-0.6, 0.6) if rng.random() < 0.5 else 0.0)
        ends = [middle + 1.5 * size * np.array([np.sin(a), np.cos(a)]) for a in (a1, a2)]
        width = rng.uniform(3.0, 7.0)
        for end in ends:
            road |= _segment_distance(yy, xx, middle, end) < width / 2
    return road


def _generate_scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw one land-cover layout: an (H, W) uint8 label with values 1..8 (rarely a 0 patch)."""
    character = rng.choice(list(_CHARACTERS), p=[0.3, 0.4, 0.3])
    count = max(4, round(rng.uniform(9, 16) * (size / 256) ** 2))
    parcels = _parcels(rng, size, count)
    kinds = rng.choice(len(_KIND_CLASS), size=count, p=_CHARACTERS[character])
    kind = kinds[parcels]
    label = _KIND_CLASS[kind].copy()

    developed = kind == _DEV_KIND
    buildings, streets = _buildings(rng, parcels, _KIND_BUILDING_KEEP[kinds] * rng.uniform(0.7, 1.1, count))
    label[buildings] = _BUILDING
    label[streets & developed] = _ROAD
    hedge_parcels = rng.random(count) < 0.35
    margins = _parcel_edges(parcels, kind == _AGRI_KIND)
    trees = _tree_cover(rng, parcels, _KIND_TREE_FRACTION[kinds])
    label[trees & ~buildings & ~(streets & developed)] = _TREE
    label[margins] = np.where(hedge_parcels[parcels[margins]], _TREE, _RANGE)
    label[ndimage.binary_dilation(_parcel_edges(parcels, developed))] = _ROAD
    label[_water(rng, size)] = _WATER
    label[_roads(rng, size)] = _ROAD
    if rng.random() < 0.15:
        yy, xx = _grid(size)
        cy, cx = rng.uniform(0, size, 2)
        label[np.hypot(yy - cy, xx - cx) < min(rng.uniform(3, 9), 0.05 * size)] = BACKGROUND
    return label


# ----------------------------------------------------------------------------- optical rendering


class _OpticalStyle(NamedTuple):
    """How a scene is photographed: season, colour balance, haze and effective resolution."""

    season: float  # 0 = summer colours of OEM, 1 = fully autumnal vegetation
    gains: tuple[float, float, float]
    haze: float  # blend weight of a bright bluish haze
    resolution_factor: float  # 1 = sharp; k = blurred and resampled at 1/k resolution


def _oem_style() -> _OpticalStyle:
    """The sharp OpenEarthMap style."""
    return _OpticalStyle(season=0.0, gains=(1.0, 1.0, 1.0), haze=0.0, resolution_factor=1.0)


def _sar_optical_style(domain_gap: float, resolution: float) -> _OpticalStyle:
    """The OEM-SAR optical style of one tile; ``domain_gap`` 0 gives exactly the OEM style.

    ``resolution`` is the tile's effective resolution relative to the pixels it is rendered on (0 < r <= 1); the
    image is rendered ``1 + domain_gap * (1 / r - 1)`` times coarser and resampled.
    """
    g = float(domain_gap)
    return _OpticalStyle(
        season=0.45 * g,
        gains=(1 + 0.08 * g, 1.0, 1 - 0.1 * g),
        haze=0.15 * g,
        resolution_factor=1.0 + g * (1.0 / resolution - 1.0),
    )


def _class_table(values: dict[int, tuple[float, ...]], default: tuple[float, ...]) -> np.ndarray:
    """An array indexed by class value, filled from ``values`` (classes not named get ``default``)."""
    return np.array([values.get(c.value, default) for c in CLASSES], np.float32)


# Realistic-looking base colours (not the legend colours).
_SUMMER_COLOURS = {
    _BARE: (176, 152, 118),
    _RANGE: (112, 130, 74),
    _DEVELOPED: (150, 146, 138),
    _ROAD: (98, 98, 100),
    _TREE: (48, 78, 44),
    _WATER: (36, 58, 74),
    _AGRI: (108, 134, 68),
    _BUILDING: (150, 90, 76),
}
_UNKNOWN_COLOUR = (112, 104, 96)
_SUMMER = _class_table(_SUMMER_COLOURS, default=_UNKNOWN_COLOUR)
# Late-season vegetation: the OEM-SAR optical style moves towards these colours.
_AUTUMN = _class_table(
    {**_SUMMER_COLOURS, _RANGE: (158, 142, 92), _TREE: (92, 84, 46), _AGRI: (170, 142, 96)},
    default=_UNKNOWN_COLOUR,
)
_ROOFS = np.array([(160, 72, 58), (92, 92, 98), (176, 172, 166), (124, 92, 72), (140, 110, 100)], np.float32)
_FIELDS = np.array([(86, 128, 56), (150, 124, 86), (186, 168, 104), (120, 140, 70)], np.float32)
# Amplitude and smoothing of each class's texture (grey levels, px).
_TEXTURE = _class_table(
    {
        _BARE: (10, 1.5),
        _RANGE: (10, 2.0),
        _DEVELOPED: (12, 1.0),
        _ROAD: (4, 1.0),
        _TREE: (24, 1.2),
        _WATER: (4, 4.0),
        _AGRI: (6, 1.0),
        _BUILDING: (5, 1.0),
    },
    default=(12, 1.5),
)


def _component_colours(
    rng: np.random.Generator, label: np.ndarray, style: _OpticalStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class base colours varied per parcel/object: (3, H, W) colours, component ids, classes."""
    ids, comp_class = _components(label)
    n = len(comp_class)
    base = (1 - style.season) * _SUMMER[comp_class] + style.season * _AUTUMN[comp_class]
    fields = _FIELDS[rng.integers(0, len(_FIELDS), n)]
    base = np.where((comp_class == _AGRI)[:, None], (1 - style.season) * fields + style.season * base, base)
    base = np.where((comp_class == _BUILDING)[:, None], _ROOFS[rng.integers(0, len(_ROOFS), n)], base)
    brightness = rng.normal(0, 10, (n, 1))
    tint = rng.normal(0, 4, (n, 3))
    colours = base + brightness + tint
    return np.moveaxis(colours[ids], -1, 0).astype(np.float32), ids, comp_class


def _stripes(rng: np.random.Generator, ids: np.ndarray, n: int) -> np.ndarray:
    """Per-object ploughing stripes: a sinusoid with its own angle and period per component."""
    yy, xx = _grid(ids.shape[0])
    angle = rng.uniform(0, np.pi, n).astype(np.float32)[ids]
    period = rng.uniform(3.0, 7.0, n).astype(np.float32)[ids]
    return np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)


def _render_optical(rng: np.random.Generator, label: np.ndarray, style: _OpticalStyle) -> np.ndarray:
    """Render a label as a (3, H, W) uint8 RGB image in the given style."""
    size = label.shape[0]
    image, ids, comp_class = _component_colours(rng, label, style)
    amplitude, sigma = _TEXTURE[label, 0], _TEXTURE[label, 1]
    fine = _smooth_noise(rng, (size, size), 1.0)
    coarse = _smooth_noise(rng, (size, size), 2.5)
    texture = amplitude * np.where(sigma < 1.8, fine, coarse)
    texture += np.where(label == _AGRI, 14 * _stripes(rng, ids, len(comp_class)), 0)
    image += texture[None]
    image *= _shadows(rng, label)[None]
    shading = 1 + 0.06 * _smooth_noise(rng, (size, size), size / 4)
    illumination = rng.normal(1, 0.06) * rng.normal(1, 0.03, 3)  # per-tile sensor/sun variation
    image *= shading[None] * illumination[:, None, None].astype(np.float32)
    image *= np.array(style.gains, np.float32)[:, None, None]
    image = (1 - style.haze) * image + style.haze * np.array([178, 184, 196], np.float32)[:, None, None]
    if style.resolution_factor > 1:
        image = _lower_resolution(image, style.resolution_factor)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _shadows(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Brightness factor of sun shadows cast by buildings and trees (one sun direction per tile)."""
    angle = rng.uniform(0, 2 * np.pi)
    factor = np.ones(label.shape, np.float32)
    for cls, length, darkness in ((_BUILDING, 3, 0.55), (_TREE, 2, 0.75)):
        mask = label == cls
        cast = np.zeros_like(mask)
        for k in range(1, length + 1):
            cast |= _shift(mask, round(k * np.sin(angle)), round(k * np.cos(angle)))
        factor[cast & ~mask] *= darkness
    return factor


def _lower_resolution(image: np.ndarray, factor: float) -> np.ndarray:
    """Blur, downsample by ``factor`` and upsample back (bilinear): a coarser sensor's look."""
    size = image.shape[1:]
    small = (max(1, round(size[0] / factor)), max(1, round(size[1] / factor)))
    blurred = ndimage.gaussian_filter(image, (0, 0.5 * factor, 0.5 * factor), mode="nearest")
    return _resize(_resize(blurred, small), size)


# ----------------------------------------------------------------------------- SAR rendering

# Mean backscatter intensity per class (linear, relative): water darkest, buildings brightest;
# rangeland and agriculture are almost the same.
_SAR_MEAN = _class_table(
    {
        _BARE: (0.06,),
        _RANGE: (0.16,),
        _DEVELOPED: (0.24,),
        _ROAD: (0.035,),
        _TREE: (0.36,),
        _WATER: (0.018,),
        _AGRI: (0.18,),
        _BUILDING: (0.8,),
    },
    default=(0.15,),
)[:, 0]


def _building_radar_effects(rng: np.random.Generator, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Double-bounce edges (sensor side) and radar shadows (far side) of buildings.

    One look direction per tile; the shadow length follows a random height per building.
    """
    building = label == _BUILDING
    comp, n = ndimage.label(building)
    height = np.concatenate([[0], rng.integers(2, 8, n)])[comp]
    angle = rng.uniform(0, 2 * np.pi)
    sy, sx = np.sin(angle), np.cos(angle)
    edge = building & ~_shift(building, round(sy), round(sx))
    shadow = np.zeros_like(building)
    for k in range(1, 8):
        shadow |= _shift(height >= k, -round(k * sy), -round(k * sx))
    return edge, shadow & ~building


def _sar_intensity(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Speckle-free backscatter intensity of a scene, with object variation and texture."""
    size = label.shape[0]
    ids, comp_class = _components(label)
    intensity = _SAR_MEAN[label] * np.exp(rng.normal(0, 0.3, len(comp_class))).astype(np.float32)[ids]
    tree = label == _TREE
    intensity[tree] *= np.exp(0.6 * _smooth_noise(rng, (size, size), 1.5))[tree]
    agri = label == _AGRI
    intensity[agri] *= 1 + 0.25 * _stripes(rng, ids, len(comp_class))[agri]
    scatterers = (label == _DEVELOPED) & (rng.random((size, size)) < 0.02)
    intensity[scatterers] *= 6.0
    edge, shadow = _building_radar_effects(rng, label)
    intensity[edge] *= 6.0
    intensity[shadow] = 0.004
    return ndimage.gaussian_filter(intensity, 0.6)


def _render_sar(rng: np.random.Generator, label: np.ndarray, looks: float) -> np.ndarray:
    """Render a label as an (H, W) uint8 SAR amplitude tile with speckle and relative scaling."""
    intensity = _sar_intensity(rng, label)
    intensity = intensity * rng.gamma(looks, 1.0 / looks, label.shape).astype(np.float32)
    # Compressive (between amplitude and dB) scaling, fitted by eye to the real Umbra sample's
    # histogram: a spike of exact zeros, a hump of low values and a long bright tail.
    value = np.power(intensity + 1e-8, 0.35)
    low = np.percentile(value, rng.uniform(10, 22))
    high = np.percentile(value, 99.8) * rng.uniform(1.05, 1.25)
    scaled = (value - low) / (high - low) * 255
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _nodata_wedge(rng: np.random.Generator, size: int) -> np.ndarray:
    """A triangle cut off at a random tile corner, covering 5-30 % of the tile."""
    yy, xx = _grid(size)
    target = rng.uniform(0.05, 0.3)
    # Legs a, b along two tile edges with a * b / 2 = target * size^2, both at most the tile side.
    a = rng.uniform(2 * target, 1.0) * size
    b = 2 * target * size * size / a
    wedge = yy / a + xx / b < 1.0
    wedge = np.rot90(wedge, k=int(rng.integers(0, 4)))
    return np.ascontiguousarray(wedge)


# ----------------------------------------------------------------------------- noisy labels

# Plausible confusions of the optical pseudo-labeller: class -> (wrong classes, probabilities).
_CONFUSIONS: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    _RANGE: ((_AGRI, _BARE, _TREE), (0.7, 0.15, 0.15)),
    _AGRI: ((_RANGE, _BARE), (0.8, 0.2)),
    _BARE: ((_DEVELOPED, _RANGE), (0.5, 0.5)),
    _DEVELOPED: ((_BARE, _RANGE), (0.6, 0.4)),
    _TREE: ((_RANGE, _AGRI), (0.8, 0.2)),
    _BUILDING: ((_DEVELOPED,), (1.0,)),
    _WATER: ((_BARE, _RANGE), (0.5, 0.5)),
}
_CONFUSION_RATE = {_WATER: 0.3, _BUILDING: 0.8, _TREE: 1.3}  # relative to the strength; others 1
_MOST_LIKELY_WRONG = np.array([_CONFUSIONS.get(c.value, ((c.value,),))[0][0] for c in CLASSES], np.uint8)


def _confuse_objects(rng: np.random.Generator, label: np.ndarray, strength: float) -> np.ndarray:
    """Relabel whole parcels/objects as a plausible wrong class."""
    ids, comp_class = _components(label)
    new_class = comp_class.copy()
    for cls, (targets, probs) in _CONFUSIONS.items():
        members = np.flatnonzero(comp_class == cls)
        rate = min(1.0, 0.8 * strength * _CONFUSION_RATE.get(cls, 1.0))
        hit = members[rng.random(len(members)) < rate]
        new_class[hit] = rng.choice(targets, size=len(hit), p=probs)
    return new_class[ids]


def _majority(label: np.ndarray, window: int) -> np.ndarray:
    """Majority (mode) filter: thin roads and small buildings vanish, corners round off."""
    votes = np.stack([ndimage.uniform_filter((label == v).astype(np.float32), window) for v in range(NUM_CLASSES)])
    return votes.argmax(0).astype(np.uint8)


def _bleed(rng: np.random.Generator, label: np.ndarray, radius: int) -> np.ndarray:
    """Grow about half of the classes by ``radius`` px into their neighbours (boundary shifts)."""
    out = label.copy()
    for cls in rng.permutation(np.arange(1, NUM_CLASSES)):
        if rng.random() < 0.5:
            out[ndimage.binary_dilation(out == cls, iterations=radius)] = cls
    return out


def _missed_buildings(rng: np.random.Generator, label: np.ndarray, strength: float) -> np.ndarray:
    """Mask of small buildings (under 80 px) that the pseudo-labeller misses."""
    comp, n = ndimage.label(label == _BUILDING)
    area = np.bincount(comp.ravel(), minlength=n + 1)
    missed = (area < 80) & (rng.random(n + 1) < min(1.0, 2 * strength))
    missed[0] = False
    return missed[comp]


def _corrupt_labels(rng: np.random.Generator, label: np.ndarray, strength: float) -> np.ndarray:
    """Turn a clean label into a noisy pseudo-label; ``strength`` 0 returns an exact copy."""
    if strength <= 0:
        return label.copy()
    size = label.shape[0]
    noisy = _confuse_objects(rng, label, strength)
    noisy = _fill_from_nearest(noisy, _missed_buildings(rng, noisy, strength))
    noisy = _majority(noisy, 1 + 2 * max(1, round(4 * strength)))
    noisy = _bleed(rng, noisy, max(1, round(6 * strength)))
    patches = _smooth_noise(rng, (size, size), 8.0) > ndtri(1 - min(0.2 * strength, 0.5))
    noisy = np.where(patches, _MOST_LIKELY_WRONG[noisy], noisy)
    shift = rng.integers(-round(4 * strength), round(4 * strength) + 1, 2)
    noisy = np.where(_shift(np.ones_like(noisy, bool), *shift), _shift(noisy, *shift), noisy)
    unknown = _smooth_noise(rng, (size, size), 5.0) > ndtri(1 - min(0.08 * strength, 0.2))
    noisy[unknown] = BACKGROUND
    return noisy.astype(np.uint8)


# ----------------------------------------------------------------------------- writing


class _Tile(NamedTuple):
    """One unit of work: a tile of one dataset."""

    dataset: str  # "oem", "train", "val" or "test"
    index: int  # 0-based within its dataset (OEM: global index over regions)
    name: str  # file name, e.g. "aachen_1.tif" or "TrainArea_001.tif"
    size: int


def _oem_tiles(config: SyntheticConfig) -> list[_Tile]:
    """All OEM tiles; the last tile of every other region is smaller (3/4 of the tile size)."""
    tiles = []
    for r, region in enumerate(oem_region_names(config.oem_regions)):
        for n in range(1, config.oem_tiles_per_region + 1):
            small = r % 2 == 1 and n == config.oem_tiles_per_region
            size = round(0.75 * config.tile_size) if small else config.tile_size
            tiles.append(_Tile("oem", len(tiles), f"{region}_{n}.tif", size))
    return tiles


def _sar_tiles(config: SyntheticConfig) -> list[_Tile]:
    """All OEM-SAR tiles of the three splits."""
    counts = {"train": config.sar_train_tiles, "val": config.sar_val_tiles, "test": config.sar_test_tiles}
    width = max(3, len(str(max(counts.values()))))
    return [
        _Tile(split, i, f"{_SAR_PREFIX[split]}_{i + 1:0{width}d}.tif", config.tile_size)
        for split, count in counts.items()
        for i in range(count)
    ]


def _oem_splits(config: SyntheticConfig, names: list[str]) -> dict[str, list[str]]:
    """A deterministic ~60/20/20 split of the OEM tiles by file name."""
    order = _rng(config.seed, "split", 0, 0).permutation(len(names))
    n_train = round(0.6 * len(names))
    n_val = round(0.2 * len(names))
    shuffled = [names[i] for i in order]
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }


def _wedge_tiles(config: SyntheticConfig) -> set[int]:
    """Indices of the test tiles that get a no-data wedge."""
    count = round(config.nodata_test_fraction * config.sar_test_tiles)
    chosen = _rng(config.seed, "test", 0, 99).permutation(config.sar_test_tiles)[:count]
    return {int(i) for i in chosen}


def _write_oem_tile(out: Path, tile: _Tile, config: SyntheticConfig) -> None:
    """Scene, sharp optical image and clean label of one OEM tile."""
    region = tile.name.rsplit("_", 1)[0]
    region_index = tile.index // config.oem_tiles_per_region
    label = _generate_scene(_rng(config.seed, "oem", tile.index, 0), tile.size)
    image = _render_optical(_rng(config.seed, "oem", tile.index, 1), label, _oem_style())
    crs, transform = _oem_georef(_rng(config.seed, "oem", tile.index, 2), region_index, config.oem_gsd_range)
    folder = out / OEM_DIR / region
    write_raster(folder / "images" / tile.name, image, crs=crs, transform=transform)
    write_raster(folder / "labels" / tile.name, label, crs=crs, transform=transform, colormap=True)


def sar_content_scale(config: SyntheticConfig, sar_gsd: float, optical_gsd: float) -> float:
    """How much larger a scene appears on an OEM-SAR grid than at the native (OEM) scale.

    The optical source of a tile has an OEM-like GSD; the tile's grid has the SAR GSD. Objects are
    ``optical_gsd / sar_gsd`` times larger in grid pixels, scaled towards 1 by ``domain_gap``.
    """
    return 1.0 + config.domain_gap * (optical_gsd / sar_gsd - 1.0)


def _write_sar_tile(out: Path, tile: _Tile, config: SyntheticConfig, wedge: bool) -> None:
    """SAR, paired optical and labels of one OEM-SAR tile (see the module docstring for the layout)."""

    def rng(purpose: int) -> np.random.Generator:
        return _rng(config.seed, tile.dataset, tile.index, purpose)

    count = {"train": config.sar_train_tiles, "val": config.sar_val_tiles, "test": config.sar_test_tiles}
    crs, transform, gsd = _sar_georef(rng(2), tile.index, count[tile.dataset], config.sar_gsd_range)
    scale = sar_content_scale(config, gsd, float(rng(7).uniform(*config.oem_gsd_range)))
    # The scene is drawn at the native (OEM pixel) scale, where the optical sensor sees it, then
    # resampled onto the finer or coarser SAR grid; the SAR and the truth live on that grid.
    scene = _generate_scene(rng(0), max(16, round(tile.size / scale)))
    label = _resample_label(scene, tile.size)
    sar = _render_sar(rng(3), label, config.speckle_looks)
    if wedge:
        mask = _nodata_wedge(rng(4), tile.size)
        sar[mask] = 0
        label[mask] = BACKGROUND
    folder = out / SAR_DIR / tile.dataset
    geo = {"crs": crs, "transform": transform}
    write_raster(folder / "sar_images" / tile.name, sar, **geo)
    last_train = tile.dataset == "train" and tile.index == config.sar_train_tiles - 1
    if tile.dataset != "test" and not last_train:
        resolution = float(rng(6).uniform(*config.optical_resolution_range))  # its own stream
        rgb = _render_optical(rng(1), scene, _sar_optical_style(config.domain_gap, resolution))
        rgb = np.clip(np.rint(_resample(rgb.astype(np.float32), tile.size)), 0, 255).astype(np.uint8)
        write_raster(folder / "rgb_images" / tile.name, rgb, **geo)
    if tile.dataset == "train":
        noisy = _corrupt_labels(rng(5), label, config.label_noise)
        write_raster(folder / "labels" / tile.name, noisy, colormap=True)  # no CRS, like real label tiles
        write_raster(folder / "labels_truth" / tile.name, label, colormap=True, **geo)
    else:
        write_raster(folder / "labels" / tile.name, label, colormap=True, **geo)


def _write_all(out: Path, config: SyntheticConfig, progress: bool) -> None:
    """Write every tile, the OEM split lists and finally the completeness marker into ``out``."""
    oem, sar = _oem_tiles(config), _sar_tiles(config)
    wedges = _wedge_tiles(config)
    with tqdm(total=len(oem) + len(sar), desc="synthetic data", unit="tile", disable=not progress) as bar:
        for tile in oem:
            _write_oem_tile(out, tile, config)
            bar.update()
        for tile in sar:
            _write_sar_tile(out, tile, config, tile.dataset == "test" and tile.index in wedges)
            bar.update()
    for split, names in _oem_splits(config, [t.name for t in oem]).items():
        (out / OEM_DIR / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    (out / MARKER).write_text(json.dumps(asdict(config), indent=2) + "\n")


_LATER_FIELDS = {"optical_resolution_range", "oem_gsd_range", "sar_gsd_range"}
_FIRST_MARKER_FIELDS = {f.name for f in fields(SyntheticConfig)} - _LATER_FIELDS


def demo_data_complete(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a complete synthetic dataset (its ``SYNTHETIC.json`` marker is valid)."""
    try:
        marker = json.loads((Path(root) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    # Only the fields of the first version are required, so that a dataset written before a field
    # was added still counts as complete (it is kept, with a warning that its config differs).
    return isinstance(marker, dict) and marker.keys() >= _FIRST_MARKER_FIELDS


@contextlib.contextmanager
def _partial_folder(root: Path) -> Iterator[Path]:
    """A hidden sibling of ``root`` to write into; removed if the block fails."""
    partial = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)  # a leftover of this very process
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _check_existing(root: Path, config: SyntheticConfig) -> bool:
    """True if ``root`` is already a complete dataset; raise if it holds anything else."""
    if demo_data_complete(root):
        stored = json.loads((root / MARKER).read_text())
        if stored != json.loads(json.dumps(asdict(config))):  # tuples are lists in JSON
            warnings.warn(
                f"{root} already holds synthetic data generated with {stored}; keeping it "
                f"(requested {asdict(config)}). Remove the folder to regenerate.",
                stacklevel=3,
            )
        return True
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root} exists but is not a complete synthetic dataset (no valid {MARKER}); refusing to "
            "write into it. Point the demo data root at a new folder, or remove this one yourself."
        )
    return False


def generate_demo_data(
    root: str | os.PathLike, settings: SyntheticConfig = SyntheticConfig(), progress: bool = True
) -> Path:
    """Write the synthetic OpenEarthMap + OpenEarthMap-SAR dataset under ``root``.

    The data is written into a hidden sibling folder that is renamed to ``root`` only when complete,
    so a killed run never leaves a dataset that looks complete. The last train tile of OEM-SAR has
    no RGB partner on purpose (loaders must skip it with a warning).

    Args:
        root: destination folder; it must not exist, be empty, or already be complete.
        settings: size, seed and difficulty of the data.
        progress: show a progress bar over tiles.

    Returns:
        ``root`` as a Path.

    Raises:
        FileExistsError: if ``root`` exists and is not a complete synthetic dataset (it is left untouched).
    """
    root = Path(root)
    check_outputs("make-demo-data", [Output(root, "generated_data", "--root")], claim=False)
    if _check_existing(root, settings):
        return root
    with _partial_folder(root) as partial:
        _write_all(partial, settings, progress)
        try:
            os.rename(partial, root)  # also replaces an empty folder
        except OSError:
            if not demo_data_complete(root):  # another process did not finish it first
                raise
            shutil.rmtree(partial, ignore_errors=True)
    return root
