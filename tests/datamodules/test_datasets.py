"""Tile indexing and reading for both official layouts, and the errors bad input gets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.datasets import TileDataset, index_oem, index_oem_sar, read_tile
from datamodules.layout import label_folder
from datamodules.rasters import DataError, raster_info, read_raster, write_raster

SAR_TRAIN = Path("OpenEarthMap-SAR/train")


@pytest.fixture
def root(tiny_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    return Path(shutil.copytree(tiny_root, tmp_path / "root"))


def test_sar_index_pairs_by_name_and_skips_the_tile_without_rgb(tiny_root: Path) -> None:
    sar_names = sorted(p.name for p in (tiny_root / SAR_TRAIN / "sar_images").iterdir())
    rgb_names = {p.name for p in (tiny_root / SAR_TRAIN / "rgb_images").iterdir()}
    lonely = [n for n in sar_names if n not in rgb_names]
    assert len(lonely) == 1
    tiles = index_oem_sar(tiny_root, "train", "sar", "official")
    assert [t.name for t in tiles] == sar_names  # stage 2 needs no RGB
    with pytest.warns(UserWarning, match=lonely[0]):
        rgb_tiles = index_oem_sar(tiny_root, "train", "rgb", None)
    assert [t.name for t in rgb_tiles] == [n for n in sar_names if n in rgb_names]
    assert all(t.image.parent.name == "rgb_images" and t.bands == 3 for t in rgb_tiles)


def test_sar_tile_without_label_is_skipped_with_warning(root: Path) -> None:
    victim = sorted((root / SAR_TRAIN / "labels").iterdir())[0]
    victim.unlink()
    with pytest.warns(UserWarning, match=victim.name):
        tiles = index_oem_sar(root, "train", "sar", "official")
    assert victim.name not in {t.name for t in tiles}


def test_pseudo_label_sets_live_under_labels_pl(root: Path) -> None:
    assert label_folder(root, "train", "official") == root / SAR_TRAIN / "labels"
    assert label_folder(root, "train", "teacher_a") == root / SAR_TRAIN / "labels_pl" / "teacher_a"
    shutil.copytree(root / SAR_TRAIN / "labels", root / SAR_TRAIN / "labels_pl" / "teacher_a")
    tiles = index_oem_sar(root, "train", "sar", "teacher_a")
    assert all(t.label.parent == root / SAR_TRAIN / "labels_pl" / "teacher_a" for t in tiles)


def test_oem_index_reads_split_lists(tiny_root: Path) -> None:
    oem = tiny_root / "OpenEarthMap"
    listed = [n for s in ("train", "val") for n in (oem / f"{s}.txt").read_text().split()]
    tiles = index_oem(tiny_root, ["train", "val"])
    assert [t.name for t in tiles] == listed
    for tile in tiles:
        region = tile.name.rsplit("_", 1)[0]
        assert tile.image == oem / region / "images" / tile.name
        assert tile.label == oem / region / "labels" / tile.name


def test_dataset_items_have_expected_shapes_and_dtypes(tiny_root: Path) -> None:
    sar = TileDataset(index_oem_sar(tiny_root, "val", "sar", "official"))[0]
    assert sar["image"].shape == (1, 64, 64) and sar["image"].dtype == torch.uint8
    assert sar["mask"].shape == (64, 64) and sar["mask"].dtype == torch.int64
    assert int(sar["mask"].max()) <= 8
    oem = TileDataset(index_oem(tiny_root, ["train"]))[0]
    assert oem["image"].shape[0] == 3 and oem["image"].dtype == torch.uint8
    assert oem["mask"].shape == oem["image"].shape[1:]


def test_empty_and_missing_split_folders_are_named(root: Path) -> None:
    with pytest.raises(DataError, match=r"OpenEarthMap-SAR/nosuch/sar_images: folder does not exist"):
        index_oem_sar(root, "nosuch", "sar", None)
    for tif in (root / SAR_TRAIN / "sar_images").iterdir():
        tif.unlink()
    with pytest.raises(DataError, match=r"train/sar_images: folder holds no \.tif files"):
        index_oem_sar(root, "train", "sar", None)


def test_oem_missing_or_empty_split_list_is_named(root: Path) -> None:
    (root / "OpenEarthMap" / "val.txt").write_text("\n")
    with pytest.raises(DataError, match=r"val\.txt: split list is empty"):
        index_oem(root, ["val"])
    with pytest.raises(DataError, match=r"extra\.txt: split list does not exist"):
        index_oem(root, ["extra"])


def _first_tile(root: Path):
    return index_oem_sar(root, "train", "sar", "official")[0]


def test_size_mismatch_between_sar_and_label_names_both(root: Path) -> None:
    tile = _first_tile(root)
    write_raster(tile.label, np.ones((60, 64), np.uint8))
    with pytest.raises(DataError, match=rf"{tile.label.name}: size 64x60 differs from its image .*{tile.image.name}"):
        read_tile(tile)


def test_wrong_band_count_is_named(root: Path) -> None:
    tile = _first_tile(root)
    write_raster(tile.image, np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(DataError, match=rf"{tile.image.name}: has 3 band\(s\), expected 1"):
        read_tile(tile)


def test_truncated_tile_is_named(root: Path) -> None:
    tile = _first_tile(root)
    data = tile.image.read_bytes()
    tile.image.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=rf"{tile.image.name}: unreadable or truncated"):
        read_tile(tile)


def test_bad_label_values_are_named(root: Path) -> None:
    tile = _first_tile(root)
    label = read_raster(tile.label)[0]
    label[0, 0] = 12
    write_raster(tile.label, label)
    with pytest.raises(DataError, match=rf"{tile.label.name}: label values \[12\] outside 0\.\.8 and 255"):
        read_tile(tile)


def test_nan_in_float_sar_is_named(root: Path) -> None:
    tile = _first_tile(root)
    image = read_raster(tile.image).astype(np.float32)
    image[0, 5, 5] = np.nan
    write_raster(tile.image, image)
    with pytest.raises(DataError, match=rf"{tile.image.name}: contains 1 NaN or inf"):
        read_tile(tile)


def test_sar_and_rgb_share_the_grid(tiny_root: Path) -> None:
    with pytest.warns(UserWarning):
        tile = index_oem_sar(tiny_root, "train", "rgb", None)[0]
    sar, rgb = raster_info(tiny_root / SAR_TRAIN / "sar_images" / tile.name), raster_info(tile.image)
    assert (sar.crs, sar.transform, sar.shape) == (rgb.crs, rgb.transform, rgb.shape)


def test_size_mismatch_between_rgb_and_sar_names_both(root: Path) -> None:
    with pytest.warns(UserWarning):
        tile = index_oem_sar(root, "train", "rgb", None)[0]
    write_raster(tile.image, np.zeros((3, 64, 50), np.uint8))
    with pytest.raises(DataError, match=rf"rgb_images/{tile.name}: size 50x64 differs from .*sar_images/{tile.name}"):
        read_tile(tile)
