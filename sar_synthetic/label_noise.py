"""Label noise: the stand-in for the official OEM-SAR labels, the truth corrupted as an optical labeller would."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import ndtri

from datamodules.classes import BACKGROUND, CLASSES, NUM_CLASSES
from sar_synthetic.arrays import components, fill_from_nearest, shifted, smooth_noise
from sar_synthetic.class_values import AGRI, BARE, BUILDING, DEVELOPED, RANGE, TREE, WATER

# Plausible confusions of the optical pseudo-labeller: class -> (wrong classes, probabilities).
_CONFUSIONS: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    RANGE: ((AGRI, BARE, TREE), (0.7, 0.15, 0.15)),
    AGRI: ((RANGE, BARE), (0.8, 0.2)),
    BARE: ((DEVELOPED, RANGE), (0.5, 0.5)),
    DEVELOPED: ((BARE, RANGE), (0.6, 0.4)),
    TREE: ((RANGE, AGRI), (0.8, 0.2)),
    BUILDING: ((DEVELOPED,), (1.0,)),
    WATER: ((BARE, RANGE), (0.5, 0.5)),
}
_CONFUSION_RATE = {WATER: 0.3, BUILDING: 0.8, TREE: 1.3}  # relative to the strength; others 1
_MOST_LIKELY_WRONG = np.array([_CONFUSIONS.get(c.value, ((c.value,),))[0][0] for c in CLASSES], np.uint8)


def _confuse_objects(rng: np.random.Generator, label: np.ndarray, strength: float) -> np.ndarray:
    """Relabel whole parcels/objects as a plausible wrong class."""
    ids, comp_class = components(label)
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
    comp, n = ndimage.label(label == BUILDING)
    area = np.bincount(comp.ravel(), minlength=n + 1)
    missed = (area < 80) & (rng.random(n + 1) < min(1.0, 2 * strength))
    missed[0] = False
    return missed[comp]


def corrupt_labels(rng: np.random.Generator, label: np.ndarray, strength: float) -> np.ndarray:
    """Turn a clean label into a noisy pseudo-label; ``strength`` 0 returns an exact copy."""
    if strength <= 0:
        return label.copy()
    size = label.shape[0]
    noisy = _confuse_objects(rng, label, strength)
    noisy = fill_from_nearest(noisy, _missed_buildings(rng, noisy, strength))
    noisy = _majority(noisy, 1 + 2 * max(1, round(4 * strength)))
    noisy = _bleed(rng, noisy, max(1, round(6 * strength)))
    patches = smooth_noise(rng, (size, size), 8.0) > ndtri(1 - min(0.2 * strength, 0.5))
    noisy = np.where(patches, _MOST_LIKELY_WRONG[noisy], noisy)
    shift = rng.integers(-round(4 * strength), round(4 * strength) + 1, 2)
    noisy = np.where(shifted(np.ones_like(noisy, bool), *shift), shifted(noisy, *shift), noisy)
    unknown = smooth_noise(rng, (size, size), 5.0) > ndtri(1 - min(0.08 * strength, 0.2))
    noisy[unknown] = BACKGROUND
    return noisy.astype(np.uint8)
