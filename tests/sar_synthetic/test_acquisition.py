"""The optical acquisition's differences (changed objects, seasonal swaps, misregistration) touch only optical tiles."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from datamodules.rasters import read_raster
from sar_synthetic.acquisition import CHANGES, SEASONAL, misregister, misregistration, optical_date_scene
from sar_synthetic.arrays import components
from sar_synthetic.class_values import AGRI, BUILDING, WATER
from sar_synthetic.layout_writer import generate_demo_data
from sar_synthetic.scene import generate_scene
from tests.helpers.data import TINY

OPTICAL = {"rgb_images", "labels_optical_date"}
SAME_DATE = {"changed_objects": 0.0, "seasonal_swap": 0.0, "optical_shift_max": 0}


def _scene(seed: int = 4) -> np.ndarray:
    return generate_scene(np.random.default_rng(seed), 128)


def test_no_difference_returns_the_scene_and_draws_nothing() -> None:
    scene, rng = _scene(), np.random.default_rng(0)
    assert optical_date_scene(rng, scene, 0.0, 0.0) is scene
    assert misregistration(rng, 0) == (0, 0)
    assert rng.random() == np.random.default_rng(0).random()


def test_every_object_changes_whole_into_a_class_of_its_table() -> None:
    scene = _scene()
    seen = optical_date_scene(np.random.default_rng(1), scene, changed_objects=1.0, seasonal_swap=1.0)
    ids, classes = components(scene)
    for index, cls in enumerate(classes):
        inside = seen[ids == index]
        assert len(np.unique(inside)) == 1  # an object changes as a whole
        table = {**CHANGES, **SEASONAL}
        expected = set(table[cls][0]) if cls in table else {cls}
        assert int(inside[0]) in expected, (cls, inside[0])
    assert not (seen == BUILDING).any() and not (seen == AGRI).any()
    assert np.array_equal(seen == WATER, scene == WATER)  # water is not in the tables


def test_change_rates_set_the_share_of_changed_objects() -> None:
    scene = _scene(7)
    ids, classes = components(scene)
    changeable = np.isin(classes, list(CHANGES))
    seen = optical_date_scene(np.random.default_rng(2), scene, changed_objects=0.3, seasonal_swap=0.0)
    changed = np.array([seen[ids == i][0] != c for i, c in enumerate(classes)])
    assert not changed[~changeable].any()
    assert 0.15 < changed[changeable].mean() < 0.45


def test_misregistration_is_a_whole_pixel_shift_within_the_bound() -> None:
    image = np.random.default_rng(3).random((3, 40, 40)).astype(np.float32)
    shifts = {misregistration(np.random.default_rng(seed), 2) for seed in range(30)}
    assert shifts <= {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)} and len(shifts) > 5
    for shift in shifts:
        out = misregister(image, shift)
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(out[:, 2:-2, 2:-2], image[:, 2 - dy : 38 - dy, 2 - dx : 38 - dx])
        ]
        assert matches == [shift]


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = replace(TINY, **SAME_DATE)
    other = replace(TINY, changed_objects=0.5, seasonal_swap=0.5, optical_shift_max=2)
    folder = tmp_path_factory.mktemp("acquisition")
    return (generate_demo_data(folder / "same", base, False), generate_demo_data(folder / "other", other, False))


def test_the_differences_reach_only_the_optical_tiles(roots: tuple[Path, Path]) -> None:
    same, other = roots
    differing = []
    for path in sorted(same.rglob("*.tif")):
        relative = path.relative_to(same)
        if not np.array_equal(read_raster(path), read_raster(other / relative)):
            differing.append(relative)
    assert differing and all(p.parts[-2] in OPTICAL for p in differing)
    assert {p.parts[-2] for p in differing} == OPTICAL


def test_the_optical_date_labels_are_the_misregistered_scene_the_optical_tile_shows(roots: tuple[Path, Path]) -> None:
    same, other = roots
    train = "OpenEarthMap-SAR/train"
    for path in sorted((same / train / "labels_optical_date").glob("*.tif")):
        assert np.array_equal(read_raster(path), read_raster(same / train / "labels_truth" / path.name))
    changed = [
        (read_raster(p) != read_raster(other / train / "labels_truth" / p.name)).mean()
        for p in sorted((other / train / "labels_optical_date").glob("*.tif"))
    ]
    assert 0 < np.mean(changed) < 0.8
