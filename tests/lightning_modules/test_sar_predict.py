"""Stage-2 ``predict``: georeferenced labels and soft maps of every SAR tile of a split, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.rasters import raster_info, read_label, read_raster, write_raster
from datamodules.sar import SARDataModule
from sar_inference.settings import InferenceConfig
from sar_landcover.commands import main as cli_main
from sar_studies.checkpoints import sar_checkpoint
from tests.helpers.cli import REPO

SAR_TEST = Path("OpenEarthMap-SAR/test/sar_images")


def test_prediction_dirs_default_per_split_and_follow_prediction_dir(tiny_root: Path, tmp_path: Path) -> None:
    assert SARDataModule(root=str(tiny_root), predict_split="val").prediction_dirs() == (
        Path("runs/predictions/val/labels"),
        Path("runs/predictions/val/soft"),
    )
    dm = SARDataModule(root=str(tiny_root), prediction_dir=str(tmp_path / "pred"), num_workers=0)
    assert dm.prediction_dirs() == (tmp_path / "pred/labels", tmp_path / "pred/soft")
    names = sorted(p.name for p in (tiny_root / SAR_TEST).glob("*.tif"))
    write_raster(tmp_path / "pred/labels" / names[0], np.zeros((64, 64), np.uint8))
    dm.setup("predict")  # a tile whose label exists is done: a re-run resumes after it
    assert [t.name for t in dm.predict_set.tiles] == names[1:]


@pytest.mark.slow
def test_predict_command_writes_labels_and_soft_maps_of_every_test_tile(tiny_root: Path, tmp_path: Path) -> None:
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt", inference=InferenceConfig(window=32, stride=16))
    out = tmp_path / "pred"
    cli_main(
        ["predict", "--config", str(REPO / "experiments/demo_sar.yaml"), "--data.root", str(tiny_root),
         "--data.num_workers", "0", "--data.prediction_dir", str(out), "--ckpt_path", str(ckpt),
         "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
         "--trainer.default_root_dir", str(tmp_path / "run")]
    )  # fmt: skip
    tiles = sorted((tiny_root / SAR_TEST).glob("*.tif"))
    names = [".sar-landcover.json", *(f"{t.name}{end}" for t in tiles for end in ("", ".aux.xml"))]  # class names
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(names)
    for tile in tiles:
        sar, label = raster_info(tile), raster_info(out / "labels" / tile.name)
        assert (label.crs, label.transform, label.shape) == (sar.crs, sar.transform, sar.shape)
        soft = read_raster(out / "soft" / tile.name)
        assert soft.shape == (9, *sar.shape) and soft.dtype == np.uint8
        label_values = read_label(out / "labels" / tile.name)
        # floor() is monotonic: the labelled class keeps the largest soft value (ties aside)
        np.testing.assert_array_equal(np.take_along_axis(soft, label_values[None], 0)[0], soft.max(0))
