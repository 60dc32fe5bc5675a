"""An OEM-SAR tile's optical acquisition is not its SAR one: changed objects, seasonal swaps, misregistration.

The real OEM-SAR optical partners are "near-date" images (the organisers, DFC2025 baseline issue #1):
what they show can differ from the ground at the SAR acquisition, and they are registered to the SAR
grid only to a few pixels. The official labels are an optical model's prediction of those images, so
they inherit these differences on top of the model's own errors; the truth (and the SAR image) is the
ground at the SAR date. Each difference is a knob of ``SyntheticConfig``; all at 0 render the optical
image from the SAR date's scene, exactly registered (and draw nothing from the tile's random stream).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sar_synthetic.arrays import components
from sar_synthetic.class_values import AGRI, BARE, BUILDING, DEVELOPED, RANGE, TREE

# What a changed object looked like at the optical date: class at the SAR date -> (classes, probabilities).
# Buildings put up or pulled down, trees felled or grown, land built on or left to grow over.
CHANGES: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    BUILDING: ((BARE, DEVELOPED), (0.6, 0.4)),
    TREE: ((RANGE,), (1.0,)),
    BARE: ((RANGE, DEVELOPED), (0.5, 0.5)),
    DEVELOPED: ((BARE,), (1.0,)),
    RANGE: ((BARE, TREE), (0.5, 0.5)),
}
# Fields in another season: ploughed or harvested (bare soil), or fallow (rangeland) at the optical date.
SEASONAL: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {AGRI: ((BARE, RANGE), (0.6, 0.4))}


SwapTable = dict[int, tuple[tuple[int, ...], tuple[float, ...]]]


def _swap_objects(rng: np.random.Generator, classes: np.ndarray, table: SwapTable, rate: float) -> np.ndarray:
    """Per-object classes with each object of a class in ``table`` swapped with probability ``rate``."""
    new = classes.copy()
    for cls, (targets, probs) in table.items():
        members = np.flatnonzero(classes == cls)
        hit = members[rng.random(len(members)) < rate]
        new[hit] = rng.choice(targets, size=len(hit), p=probs)
    return new


def optical_date_scene(
    rng: np.random.Generator, scene: np.ndarray, changed_objects: float, seasonal_swap: float
) -> np.ndarray:
    """The scene as the optical image saw it: some objects changed, some fields in another season.

    Args:
        rng: the tile's acquisition stream.
        scene: the land cover at the SAR date, (H, W) uint8.
        changed_objects: probability that an object (a connected region of one class) of a class in
            ``CHANGES`` looked different at the optical date.
        seasonal_swap: probability that an agriculture parcel looked bare or fallow at the optical date.

    Returns:
        The optical date's scene; ``scene`` itself when both rates are 0.
    """
    if changed_objects <= 0 and seasonal_swap <= 0:
        return scene
    ids, classes = components(scene)
    new = _swap_objects(rng, classes, CHANGES, changed_objects)
    new = _swap_objects(rng, new, SEASONAL, seasonal_swap)  # no changed object became a field
    return new[ids].astype(np.uint8)


def misregistration(rng: np.random.Generator, max_shift: int) -> tuple[int, int]:
    """A random shift of whole pixels, at most ``max_shift`` along each axis ((0, 0), drawing nothing, if 0)."""
    if max_shift <= 0:
        return 0, 0
    dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, 2))
    return dy, dx


def misregister(image: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """A (C, H, W) image moved by ``shift`` (rows, columns); the uncovered border repeats the edge pixels
    (the optical image extends past the tile)."""
    if shift == (0, 0):
        return image
    return ndimage.shift(image, (0, *shift), order=0, mode="nearest")
