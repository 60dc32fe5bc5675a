"""Array helpers shared by the scene generator and the renderers: noise, shifts, components, resampling."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from datamodules.classes import NUM_CLASSES


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-6)


def shifted(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Return ``out`` with ``out[y, x] = array[y - dy, x - dx]``, zero (False) outside."""
    out = np.zeros_like(array)
    h, w = array.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = array[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of a size x size tile, as float32."""
    yy, xx = np.mgrid[0:size, 0:size]
    return yy.astype(np.float32), xx.astype(np.float32)


def components(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (C, H, W) float image to (C, *shape), pixel centres aligned."""
    h, w = image.shape[1:]
    ys = (np.arange(shape[0], dtype=np.float32) + 0.5) * h / shape[0] - 0.5
    xs = (np.arange(shape[1], dtype=np.float32) + 0.5) * w / shape[1] - 0.5
    coords = np.stack(np.meshgrid(ys, xs, indexing="ij"))
    return np.stack([ndimage.map_coordinates(band, coords, order=1, mode="nearest") for band in image])


def resample(image: np.ndarray, size: int) -> np.ndarray:
    """Resample a (C, h, w) float image onto a size x size grid: bilinear, Gaussian pre-filtered
    when shrinking (as a coarser sensor would integrate), pixel centres aligned; unchanged if
    already that size."""
    if image.shape[1:] == (size, size):
        return image
    factor = image.shape[1] / size
    if factor > 1:
        image = ndimage.gaussian_filter(image, (0, 0.5 * factor, 0.5 * factor), mode="nearest")
    return resize(image, (size, size))


def resample_label(label: np.ndarray, size: int) -> np.ndarray:
    """Resample an (h, w) label onto a size x size grid on the same footprint as ``resample``:
    the class whose resampled indicator is largest, so boundaries stay smooth when enlarged."""
    indicators = np.stack([label == v for v in range(NUM_CLASSES)]).astype(np.float32)
    return resample(indicators, size).argmax(0).astype(np.uint8)


def fill_from_nearest(label: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace the pixels under ``mask`` by the label of the nearest pixel outside it."""
    if not mask.any() or mask.all():
        return label
    _, (iy, ix) = ndimage.distance_transform_edt(mask, return_indices=True)
    return label[iy, ix]


def segment_distance(yy: np.ndarray, xx: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the line segment from point p to point q (row, col)."""
    d = q - p
    t = np.clip(((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / float(d @ d), 0.0, 1.0)
    return np.hypot(yy - (p[0] + t * d[0]), xx - (p[1] + t * d[1]))
