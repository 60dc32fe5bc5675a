"""The replica of the real download: its layout and names, and what the datamodules do on it (no val labels)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from datamodules.datasets import index_oem
from datamodules.optical import OpticalDataModule
from datamodules.rasters import raster_info
from datamodules.sar import SARDataModule
from sar_synthetic.profiles import make_demo_data
from sar_synthetic.replica import MARKER, REPLICA_SETTINGS, TRUTH_DIR, xbd_like_region

SMALL = replace(REPLICA_SETTINGS, tile_size=64, oem_tiles_per_region=3, sar_train_tiles=5, sar_val_tiles=2)


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_data(tmp_path_factory.mktemp("replica") / "root", "dfc2025_replica", SMALL, progress=False)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_replica_has_the_download_layout_and_nothing_more(replica: Path) -> None:
    sar = replica / "OpenEarthMap-SAR"
    assert _names(replica) == sorted(["OpenEarthMap", "OpenEarthMap-SAR", TRUTH_DIR, MARKER])
    assert _names(sar) == ["test", "train", "val"]
    assert _names(sar / "train") == ["labels", "rgb_images", "sar_images"]
    assert _names(sar / "val") == ["sar_images"] and _names(sar / "test") == ["sar_images"]
    assert _names(sar / "train" / "sar_images") == [f"TrainArea_{i:03d}.tif" for i in range(1, 6)]
    assert _names(sar / "val" / "sar_images") == ["ValArea_001.tif", "ValArea_002.tif"]
    assert _names(sar / "test" / "sar_images") == [f"TestArea_{i:03d}.tif" for i in range(1, 4)]
    assert "TrainArea_005.tif" not in _names(sar / "train" / "rgb_images")  # a SAR tile without its RGB partner
    info = raster_info(sar / "test" / "sar_images" / "TestArea_001.tif")
    assert (info.count, info.dtype, info.crs is not None) == (1, "uint8", True)
    truth = replica / TRUTH_DIR / "OpenEarthMap-SAR"
    assert _names(truth / "val") == ["labels", "rgb_images"] and _names(truth / "test") == ["labels"]
    assert _names(truth / "train" / "labels") == _names(sar / "train" / "sar_images")
    assert REPLICA_SETTINGS.tile_size == 1024  # the real size by default


def test_one_openearthmap_region_is_listed_and_labelled_without_images(replica: Path) -> None:
    oem = replica / "OpenEarthMap"
    region = xbd_like_region(SMALL)
    assert region is not None and not (oem / region / "images").exists()
    listed = {s: (oem / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    labelled = sorted(n for s in ("train", "val") for n in listed[s] if n.startswith(f"{region}_"))
    assert _names(oem / region / "labels") == labelled  # labels, but no images (the xBD tiles of the download)
    split = next(s for s, names in listed.items() if any(n.startswith(f"{region}_") for n in names))
    with pytest.warns(UserWarning, match=rf"{split}\.txt: skipping \d+ listed tile\(s\) whose image is missing"):
        tiles = index_oem(replica, [split], with_labels=split != "test")
    assert tiles and not any(t.name.startswith(f"{region}_") for t in tiles)
    for name in listed["test"]:  # OpenEarthMap's test labels are not public
        assert not (oem / name.rsplit("_", 1)[0] / "labels" / name).exists()


def test_without_val_labels_stage2_validates_on_a_train_holdout_and_says_so(
    replica: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = SARDataModule(root=str(replica), num_workers=0)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert "val/labels has no tiles; validating on a hold-out of train tiles" in caplog.text
    held_out = [t.name for t in dm.val_set.tiles]
    assert held_out == ["TrainArea_005.tif"]  # the last 10 % by name (at least one tile)
    assert not set(held_out) & {t.name for t in dm.train_set.tiles}


def test_without_labelled_target_optical_stage1_scores_the_source_val_split_and_says_so(
    replica: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = OpticalDataModule(root=str(replica), num_workers=0)
    with caplog.at_level(logging.INFO), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the image-less region and the RGB-less train tile are skipped
        dm.setup("fit")
    assert "no labelled target optical" in caplog.text and "a monitor, not a hold-out" in caplog.text
    assert [s.split for s in dm.val_sets] == ["val"]
    assert all(t.image.parent.parent.parent.name == "OpenEarthMap" for t in dm.val_sets[0].tiles)


def test_the_replica_is_kept_when_complete_and_nothing_else_is_written_over(replica: Path, tmp_path: Path) -> None:
    assert make_demo_data(replica, "dfc2025_replica", SMALL, progress=False) == replica
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("not a replica")
    with pytest.raises(FileExistsError, match="is not a complete replica"):
        make_demo_data(other, "dfc2025_replica", SMALL, progress=False)
    assert _names(other) == ["mine.txt"]
