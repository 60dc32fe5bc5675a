"""The stage-2 datamodule: raw batches (the task normalises), validation sources, reproducibility, a missing root."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.rasters import DataError
from datamodules.sar import SARDataModule
from lightning_modules.input_transform import InputTransform
from lightning_modules.networks import NetworkConfig
from lightning_modules.sar_segmenter import SARSegmenter
from tests.helpers.data import TINY


def _first_train_batch(dm: SARDataModule) -> dict:
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def test_train_batches_are_crops_of_raw_pixels_normalised_after_transfer(tiny_root: Path) -> None:
    dm = SARDataModule(root=str(tiny_root), crop_size=48, batch_size=3, num_workers=0)
    batch = _first_train_batch(dm)
    assert batch["image"].shape == (3, 1, 48, 48) and batch["image"].dtype == torch.uint8
    assert batch["mask"].shape == (3, 48, 48) and batch["mask"].dtype == torch.int64
    # Classes, or 255 where a rescale below the crop size was padded (the task learns no padding).
    assert set(batch["mask"].unique().tolist()) <= {*range(9), 255}
    image = batch["image"]
    out = SARSegmenter().on_after_batch_transfer(dict(batch), 0)
    assert out["image"].dtype == torch.float32
    torch.testing.assert_close(out["image"], image.float() / 255)
    assert out["raw_image"] is image


def test_three_channel_imagenet_input(tiny_root: Path) -> None:
    dm = SARDataModule(root=str(tiny_root), crop_size=32, batch_size=2, num_workers=0)
    task = SARSegmenter(network=NetworkConfig(in_channels=3), input=InputTransform(normalisation="imagenet"))
    out = task.on_after_batch_transfer(_first_train_batch(dm), 0)
    assert out["image"].shape == (2, 3, 32, 32)
    assert not torch.equal(out["image"][:, 0], out["image"][:, 1])  # per-channel ImageNet statistics


def test_same_seed_same_batches(tiny_root: Path) -> None:
    batches = []
    for _ in range(2):
        torch.manual_seed(123)
        batches.append(
            _first_train_batch(SARDataModule(root=str(tiny_root), crop_size=32, batch_size=2, num_workers=0))
        )
    assert torch.equal(batches[0]["image"], batches[1]["image"])
    torch.manual_seed(124)
    other = _first_train_batch(SARDataModule(root=str(tiny_root), crop_size=32, batch_size=2, num_workers=0))
    assert not torch.equal(batches[0]["image"], other["image"])


def test_val_split_and_train_holdout(tiny_root: Path) -> None:
    dm = SARDataModule(root=str(tiny_root), num_workers=0)
    dm.setup("fit")
    assert [t.image.parent.parent.name for t in dm.val_set.tiles] == ["val"] * TINY.sar_val_tiles
    holdout = SARDataModule(root=str(tiny_root), num_workers=0, val_source="train_holdout", holdout_fraction=0.34)
    holdout.setup("fit")
    train_names = [t.name for t in holdout.train_set.tiles]
    val_names = [t.name for t in holdout.val_set.tiles]
    assert len(val_names) == 3 and not set(train_names) & set(val_names)
    assert sorted(train_names + val_names) == train_names + val_names  # a contiguous block at the end


def test_samples_per_epoch_sets_epoch_length(tiny_root: Path) -> None:
    dm = SARDataModule(root=str(tiny_root), crop_size=32, batch_size=2, num_workers=0, samples_per_epoch=10)
    dm.setup("fit")
    assert len(dm.train_dataloader()) == 5


def test_a_missing_root_is_a_one_line_error_that_says_how_to_make_the_demo_data(tmp_path: Path) -> None:
    dm = SARDataModule(root=str(tmp_path / "nowhere"), num_workers=0)
    with pytest.raises(DataError) as error:
        dm.setup("fit")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'nowhere'}: data root does not exist") and "\n" not in message
    assert f"make-demo-data --root {tmp_path / 'nowhere'}" in message
    assert not (tmp_path / "nowhere").exists()  # nothing is generated


def test_a_root_without_the_split_names_the_missing_folder(tmp_path: Path) -> None:
    dm = SARDataModule(root=str(tmp_path), num_workers=0)
    with pytest.raises(ValueError, match=r"OpenEarthMap-SAR/train/sar_images: folder does not exist"):
        dm.setup("fit")


def test_test_and_predict_splits(tiny_root: Path) -> None:
    dm = SARDataModule(root=str(tiny_root), num_workers=0)
    dm.setup("test")
    dm.setup("predict")
    assert len(dm.test_set) == len(dm.predict_set) == TINY.sar_test_tiles
    item = next(iter(dm.predict_dataloader()))
    assert "mask" not in item and item["image"].shape == (1, 1, TINY.tile_size, TINY.tile_size)
    assert next(iter(dm.test_dataloader()))["mask"].shape == (1, TINY.tile_size, TINY.tile_size)
