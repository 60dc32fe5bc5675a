"""The scene generator: land-cover layouts of parcels, buildings in streets, trees, water and roads."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.special import ndtri

from datamodules.classes import BACKGROUND
from sar_synthetic.arrays import grid, segment_distance, smooth_noise
from sar_synthetic.class_values import AGRI, BARE, BUILDING, DEVELOPED, RANGE, ROAD, TREE, WATER

# Parcel kinds: what fills a Voronoi cell before roads, trees and water are laid over it.
_KIND_CLASS = np.array([AGRI, RANGE, BARE, DEVELOPED, RANGE], np.uint8)  # 4 = forest on rangeland
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
    yy, xx = grid(size)
    warp = 4.0 * np.stack([smooth_noise(rng, (size, size), 10.0) for _ in range(2)])
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
    yy, xx = grid(size)
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
    field = 0.8 * smooth_noise(rng, (size, size), 4.0) + 0.6 * smooth_noise(rng, (size, size), 1.5)
    field /= np.hypot(0.8, 0.6)
    cover = np.clip(fraction * rng.uniform(0.6, 1.4, len(fraction)), 1e-4, 0.98)
    return field > ndtri(1.0 - cover).astype(np.float32)[parcels]


def _water(rng: np.random.Generator, size: int) -> np.ndarray:
    """A river band, a pond, or nothing."""
    yy, xx = grid(size)
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
        rough = smooth_noise(rng, (size, size), 6.0)
        return np.hypot(yy - cy, xx - cx) / radius + 0.2 * rough < 1.0
    return np.zeros((size, size), bool)


def _roads(rng: np.random.Generator, size: int) -> np.ndarray:
    """A few straight or bent roads, 3-7 px wide, crossing the tile."""
    yy, xx = grid(size)
    road = np.zeros((size, size), bool)
    count = max(1, round(rng.uniform(0.6, 2.6) * size / 256))
    for _ in range(count):
        middle = rng.uniform(0.15 * size, 0.85 * size, 2)
        a1 = rng.uniform(0, 2 * np.pi)
        a2 = a1 + np.pi + (rng.uniform(-0.6, 0.6) if rng.random() < 0.5 else 0.0)
        ends = [middle + 1.5 * size * np.array([np.sin(a), np.cos(a)]) for a in (a1, a2)]
        width = rng.uniform(3.0, 7.0)
        for end in ends:
            road |= segment_distance(yy, xx, middle, end) < width / 2
    return road


def generate_scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw one land-cover layout: an (H, W) uint8 label with values 1..8 (rarely a 0 patch)."""
    character = rng.choice(list(_CHARACTERS), p=[0.3, 0.4, 0.3])
    count = max(4, round(rng.uniform(9, 16) * (size / 256) ** 2))
    parcels = _parcels(rng, size, count)
    kinds = rng.choice(len(_KIND_CLASS), size=count, p=_CHARACTERS[character])
    kind = kinds[parcels]
    label = _KIND_CLASS[kind].copy()

    developed = kind == _DEV_KIND
    buildings, streets = _buildings(rng, parcels, _KIND_BUILDING_KEEP[kinds] * rng.uniform(0.7, 1.1, count))
    label[buildings] = BUILDING
    label[streets & developed] = ROAD
    hedge_parcels = rng.random(count) < 0.35
    margins = _parcel_edges(parcels, kind == _AGRI_KIND)
    trees = _tree_cover(rng, parcels, _KIND_TREE_FRACTION[kinds])
    label[trees & ~buildings & ~(streets & developed)] = TREE
    label[margins] = np.where(hedge_parcels[parcels[margins]], TREE, RANGE)
    label[ndimage.binary_dilation(_parcel_edges(parcels, developed))] = ROAD
    label[_water(rng, size)] = WATER
    label[_roads(rng, size)] = ROAD
    if rng.random() < 0.15:
        yy, xx = grid(size)
        cy, cx = rng.uniform(0, size, 2)
        label[np.hypot(yy - cy, xx - cx) < min(rng.uniform(3, 9), 0.05 * size)] = BACKGROUND
    return label
