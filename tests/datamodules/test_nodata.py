"""No-data detection: solid border-connected zero regions, not scattered SAR zeros."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from datamodules.nodata import apply_nodata, nodata_mask
from tests.helpers.real_sample import UMBRA_CROP

SIZE = 256


def corner_wedge(shape: tuple[int, int], area_fraction: float = 0.1) -> np.ndarray:
    """A right-angled triangle in the top-left corner covering about ``area_fraction`` of the tile."""
    leg = round(np.sqrt(2 * area_fraction * shape[0] * shape[1]))
    assert leg <= min(shape), "the triangle must fit inside the tile"
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return rows + cols < leg


def speckled_tile(seed: int, clustered: bool) -> np.ndarray:
    """Random uint8 amplitudes with about 25 % exact zeros, independent or in small clusters."""
    rng = np.random.default_rng(seed)
    tile = rng.integers(1, 256, (SIZE, SIZE)).astype(np.uint8)
    if clustered:
        field = ndimage.gaussian_filter(rng.standard_normal((SIZE, SIZE)), 1.0)
        tile[field < np.quantile(field, 0.25)] = 0
    else:
        tile[rng.random((SIZE, SIZE)) < 0.25] = 0
    return tile


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("clustered", [False, True])
def test_wedge_is_found_and_scattered_zeros_are_not(clustered: bool) -> None:
    tile = speckled_tile(0, clustered)
    assert 0.2 < (tile == 0).mean() < 0.3
    wedge = corner_wedge((SIZE, SIZE))
    tile[wedge] = 0
    mask = nodata_mask(tile, min_area=SIZE * SIZE // 100)
    assert mask.dtype == bool and mask.shape == tile.shape
    assert iou(mask, wedge) > 0.95
    assert mask[~wedge].mean() < 0.01


@pytest.mark.parametrize("clustered", [False, True])
def test_only_scattered_zeros_give_an_empty_mask(clustered: bool) -> None:
    tile = speckled_tile(1, clustered)
    assert nodata_mask(tile, min_area=SIZE * SIZE // 100).mean() < 0.001
    assert nodata_mask(tile, min_area=0).mean() < 0.005


def test_interior_and_small_zero_regions_are_not_nodata() -> None:
    tile = np.full((SIZE, SIZE), 100, dtype=np.uint8)
    tile[100:160, 100:160] = 0  # large but away from the border
    tile[:8, :8] = 0  # on the border but small
    assert not nodata_mask(tile, min_area=500).any()
    assert nodata_mask(tile, min_area=10)[:8, :8].all()


def test_zero_value_and_opening_one() -> None:
    tile = np.ones((32, 32), dtype=np.float32)
    tile[:, :10] = -1.0
    mask = nodata_mask(tile, min_area=50, zero_value=-1.0, opening=1)
    assert mask[:, :10].all() and not mask[:, 10:].any()


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        nodata_mask(np.zeros((2, 8, 8)), min_area=1)
    with pytest.raises(ValueError, match="opening"):
        nodata_mask(np.zeros((8, 8)), min_area=1, opening=0)
    with pytest.raises(ValueError, match="min_area"):
        nodata_mask(np.zeros((8, 8)), min_area=-1)
    with pytest.raises(ValueError, match="shape"):
        apply_nodata(np.zeros((8, 8), np.uint8), np.zeros((8, 9), bool))


def test_apply_nodata_only_below_the_valid_fraction_threshold() -> None:
    label = np.full((100, 100), 5, dtype=np.uint8)
    big = np.zeros((100, 100), dtype=bool)
    big[:10] = True  # 90 % valid
    out = apply_nodata(label, big)
    assert out is not label and (label == 5).all()
    assert (out[:10] == 0).all() and (out[10:] == 5).all()
    tiny = np.zeros((100, 100), dtype=bool)
    tiny[0, :10] = True  # 99.9 % valid, above 99.85 %
    assert (apply_nodata(label, tiny) == 5).all()
    assert (apply_nodata(label, tiny, valid_fraction_threshold=0.9995)[0, :10] == 0).all()


@pytest.fixture(scope="module")
def umbra() -> np.ndarray:
    with rasterio.open(UMBRA_CROP) as src:
        return src.read(1)


def test_real_umbra_scattered_zeros_are_not_nodata(umbra: np.ndarray) -> None:
    zeros = (umbra == 0).mean()
    flagged = nodata_mask(umbra, min_area=umbra.size // 100).mean()
    flagged_any_area = nodata_mask(umbra, min_area=0).mean()
    print(f"Umbra: {zeros:.2%} exact zeros; flagged {flagged:.4%} (min_area 1 %), {flagged_any_area:.4%} (min_area 0)")
    assert 0.2 < zeros < 0.3
    assert flagged < 0.001
    assert flagged_any_area < 0.001


def test_real_umbra_with_a_wedge_finds_the_wedge(umbra: np.ndarray) -> None:
    wedge = corner_wedge(umbra.shape)
    tile = umbra.copy()
    tile[wedge] = 0
    mask = nodata_mask(tile, min_area=tile.size // 100)
    assert iou(mask, wedge) > 0.95
    assert mask[~wedge].mean() < 0.01
    assert (apply_nodata(np.ones_like(tile), mask)[wedge] == 0).mean() > 0.99
