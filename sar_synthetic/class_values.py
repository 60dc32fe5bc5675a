"""The land-cover class values the generator draws, by name, and per-class lookup tables of the renderers."""

from __future__ import annotations

import numpy as np

from datamodules.classes import CLASSES

_VALUE = {c.name: c.value for c in CLASSES}
BARE, RANGE, DEVELOPED, ROAD = (_VALUE[n] for n in ("Bareland", "Rangeland", "Developed space", "Road"))
TREE, WATER, AGRI, BUILDING = (_VALUE[n] for n in ("Tree", "Water", "Agriculture land", "Building"))


def class_table(values: dict[int, tuple[float, ...]], default: tuple[float, ...]) -> np.ndarray:
    """An array indexed by class value, filled from ``values`` (classes not named get ``default``)."""
    return np.array([values.get(c.value, default) for c in CLASSES], np.float32)
