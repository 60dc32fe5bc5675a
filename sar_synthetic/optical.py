"""Optical rendering of a scene: the sharp OpenEarthMap style and the OEM-SAR style (season, haze, resolution)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from sar_synthetic.arrays import components, grid, resize, shifted, smooth_noise
from sar_synthetic.class_values import AGRI, BARE, BUILDING, DEVELOPED, RANGE, ROAD, TREE, WATER, class_table


class OpticalStyle(NamedTuple):
    """How a scene is photographed: season, colour balance, haze and effective resolution."""

    season: float  # 0 = summer colours of OEM, 1 = fully autumnal vegetation
    gains: tuple[float, float, float]
    haze: float  # blend weight of a bright bluish haze
    resolution_factor: float  # 1 = sharp; k = blurred and resampled at 1/k resolution


def oem_style() -> OpticalStyle:
    """The sharp OpenEarthMap style."""
    return OpticalStyle(season=0.0, gains=(1.0, 1.0, 1.0), haze=0.0, resolution_factor=1.0)


def sar_optical_style(domain_gap: float, resolution: float) -> OpticalStyle:
    """The OEM-SAR optical style of one tile; ``domain_gap`` 0 gives exactly the OEM style.

    ``resolution`` is the tile's effective resolution relative to the pixels it is rendered on (0 < r <= 1); the
    image is rendered ``1 + domain_gap * (1 / r - 1)`` times coarser and resampled.
    """
    g = float(domain_gap)
    return OpticalStyle(
        season=0.45 * g,
        gains=(1 + 0.08 * g, 1.0, 1 - 0.1 * g),
        haze=0.15 * g,
        resolution_factor=1.0 + g * (1.0 / resolution - 1.0),
    )


# Realistic-looking base colours (not the legend colours).
_SUMMER_COLOURS = {
    BARE: (198, 184, 156),  # dry bare soil: brighter and less saturated than any field (BENCHMARKS.md)
    RANGE: (112, 130, 74),
    DEVELOPED: (150, 146, 138),
    ROAD: (98, 98, 100),
    TREE: (48, 78, 44),
    WATER: (36, 58, 74),
    AGRI: (108, 134, 68),
    BUILDING: (150, 90, 76),
}
_UNKNOWN_COLOUR = (112, 104, 96)
_SUMMER = class_table(_SUMMER_COLOURS, default=_UNKNOWN_COLOUR)
# Late-season vegetation: the OEM-SAR optical style moves towards these colours.
_AUTUMN = class_table(
    {**_SUMMER_COLOURS, RANGE: (158, 142, 92), TREE: (92, 84, 46), AGRI: (170, 142, 96)},
    default=_UNKNOWN_COLOUR,
)
_ROOFS = np.array([(160, 72, 58), (92, 92, 98), (176, 172, 166), (124, 92, 72), (140, 110, 100)], np.float32)
_FIELDS = np.array([(86, 128, 56), (150, 124, 86), (186, 168, 104), (120, 140, 70)], np.float32)
# Amplitude and smoothing of each class's texture (grey levels, px).
_TEXTURE = class_table(
    {
        BARE: (10, 1.5),
        RANGE: (10, 2.0),
        DEVELOPED: (12, 1.0),
        ROAD: (4, 1.0),
        TREE: (24, 1.2),
        WATER: (4, 4.0),
        AGRI: (6, 1.0),
        BUILDING: (5, 1.0),
    },
    default=(12, 1.5),
)


def _component_colours(
    rng: np.random.Generator, label: np.ndarray, style: OpticalStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class base colours varied per parcel/object: (3, H, W) colours, component ids, classes."""
    ids, comp_class = components(label)
    n = len(comp_class)
    base = (1 - style.season) * _SUMMER[comp_class] + style.season * _AUTUMN[comp_class]
    fields = _FIELDS[rng.integers(0, len(_FIELDS), n)]
    base = np.where((comp_class == AGRI)[:, None], (1 - style.season) * fields + style.season * base, base)
    base = np.where((comp_class == BUILDING)[:, None], _ROOFS[rng.integers(0, len(_ROOFS), n)], base)
    brightness = rng.normal(0, 10, (n, 1))
    tint = rng.normal(0, 4, (n, 3))
    colours = base + brightness + tint
    return np.moveaxis(colours[ids], -1, 0).astype(np.float32), ids, comp_class


def stripes(rng: np.random.Generator, ids: np.ndarray, n: int) -> np.ndarray:
    """Per-object ploughing stripes: a sinusoid with its own angle and period per component."""
    yy, xx = grid(ids.shape[0])
    angle = rng.uniform(0, np.pi, n).astype(np.float32)[ids]
    period = rng.uniform(3.0, 7.0, n).astype(np.float32)[ids]
    return np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)


def render_optical(rng: np.random.Generator, label: np.ndarray, style: OpticalStyle) -> np.ndarray:
    """Render a label as a (3, H, W) uint8 RGB image in the given style."""
    size = label.shape[0]
    image, ids, comp_class = _component_colours(rng, label, style)
    amplitude, sigma = _TEXTURE[label, 0], _TEXTURE[label, 1]
    fine = smooth_noise(rng, (size, size), 1.0)
    coarse = smooth_noise(rng, (size, size), 2.5)
    texture = amplitude * np.where(sigma < 1.8, fine, coarse)
    texture += np.where(label == AGRI, 14 * stripes(rng, ids, len(comp_class)), 0)
    image += texture[None]
    image *= _shadows(rng, label)[None]
    shading = 1 + 0.06 * smooth_noise(rng, (size, size), size / 4)
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
    for cls, length, darkness in ((BUILDING, 3, 0.55), (TREE, 2, 0.75)):
        mask = label == cls
        cast = np.zeros_like(mask)
        for k in range(1, length + 1):
            cast |= shifted(mask, round(k * np.sin(angle)), round(k * np.cos(angle)))
        factor[cast & ~mask] *= darkness
    return factor


def _lower_resolution(image: np.ndarray, factor: float) -> np.ndarray:
    """Blur, downsample by ``factor`` and upsample back (bilinear): a coarser sensor's look."""
    size = image.shape[1:]
    small = (max(1, round(size[0] / factor)), max(1, round(size[1] / factor)))
    blurred = ndimage.gaussian_filter(image, (0, 0.5 * factor, 0.5 * factor), mode="nearest")
    return resize(resize(blurred, small), size)
