"""SAR rendering of a scene: class backscatter, building edges and shadows, speckle, 8-bit scaling, no-data wedges."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sar_synthetic.arrays import components, grid, shifted, smooth_noise
from sar_synthetic.class_values import AGRI, BARE, BUILDING, DEVELOPED, RANGE, ROAD, TREE, WATER, class_table
from sar_synthetic.optical import stripes

# Mean backscatter intensity per class (linear, relative): water darkest, buildings brightest;
# rangeland and agriculture are almost the same.
_SAR_MEAN = class_table(
    {
        BARE: (0.06,),
        RANGE: (0.16,),
        DEVELOPED: (0.24,),
        ROAD: (0.035,),
        TREE: (0.36,),
        WATER: (0.018,),
        AGRI: (0.18,),
        BUILDING: (0.8,),
    },
    default=(0.15,),
)[:, 0]


def _building_radar_effects(rng: np.random.Generator, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Double-bounce edges (sensor side) and radar shadows (far side) of buildings.

    One look direction per tile; the shadow length follows a random height per building.
    """
    building = label == BUILDING
    comp, n = ndimage.label(building)
    height = np.concatenate([[0], rng.integers(2, 8, n)])[comp]
    angle = rng.uniform(0, 2 * np.pi)
    sy, sx = np.sin(angle), np.cos(angle)
    edge = building & ~shifted(building, round(sy), round(sx))
    shadow = np.zeros_like(building)
    for k in range(1, 8):
        shadow |= shifted(height >= k, -round(k * sy), -round(k * sx))
    return edge, shadow & ~building


def _sar_intensity(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Speckle-free backscatter intensity of a scene, with object variation and texture."""
    size = label.shape[0]
    ids, comp_class = components(label)
    intensity = _SAR_MEAN[label] * np.exp(rng.normal(0, 0.3, len(comp_class))).astype(np.float32)[ids]
    tree = label == TREE
    intensity[tree] *= np.exp(0.6 * smooth_noise(rng, (size, size), 1.5))[tree]
    agri = label == AGRI
    intensity[agri] *= 1 + 0.25 * stripes(rng, ids, len(comp_class))[agri]
    scatterers = (label == DEVELOPED) & (rng.random((size, size)) < 0.02)
    intensity[scatterers] *= 6.0
    edge, shadow = _building_radar_effects(rng, label)
    intensity[edge] *= 6.0
    intensity[shadow] = 0.004
    return ndimage.gaussian_filter(intensity, 0.6)


def render_sar(rng: np.random.Generator, label: np.ndarray, looks: float) -> np.ndarray:
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


def nodata_wedge(rng: np.random.Generator, size: int) -> np.ndarray:
    """A triangle cut off at a random tile corner, covering 5-30 % of the tile."""
    yy, xx = grid(size)
    target = rng.uniform(0.05, 0.3)
    # Legs a, b along two tile edges with a * b / 2 = target * size^2, both at most the tile side.
    a = rng.uniform(2 * target, 1.0) * size
    b = 2 * target * size * size / a
    wedge = yy / a + xx / b < 1.0
    wedge = np.rot90(wedge, k=int(rng.integers(0, 4)))
    return np.ascontiguousarray(wedge)
