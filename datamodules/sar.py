"""Stage-2 LightningDataModule: OpenEarthMap-SAR SAR tiles with official labels or a pseudo-label set."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from datamodules.classes import BACKGROUND, PADDING
from datamodules.datasets import TileDataset, index_oem_sar
from datamodules.layout import has_tiles, label_folder
from datamodules.loaders import TileDataModule, tile_loader, tiles_to_predict, training_position
from datamodules.sar_scaling import SARScaling
from datamodules.transforms import TrainAugmentation


class SARDataModule(TileDataModule):
    """OpenEarthMap-SAR SAR tiles for training a SAR segmenter.

    Batches hold the raw 8-bit SAR band (the task normalises it and replicates it to its network's
    input channels).

    Args:
        root: data root holding ``OpenEarthMap-SAR/`` (and ``OpenEarthMap/``).
        label_set: ``official`` (``train/labels``) or the name of a pseudo-label set
            (``train/labels_pl/<name>``) or another label folder under ``train/``.
        crop_size: side of the square training crops.
        batch_size: training batch size per device.
        val_batch_size: validation/test batch size (whole tiles; keep 1 if tiles differ in size).
        num_workers: data-loader worker processes.
        scaling: how the SAR tiles' values become 8-bit amplitude (default ``uint8``: the tiles are
            8-bit as OEM-SAR distributes them; anything else stops with an error naming the option).
        scale_range: random rescale range of the training augmentation ((1, 1): no rescale).
        cat_max_ratio: a training crop is redrawn (up to 10 times) while one class covers more than this
            (1: a plain random crop).
        flip_rotate: random flips and rot90 of the training crops (the contest baseline has none).
        val_source: ``val`` (the ``val`` split with its labels), ``train_holdout`` (the last
            ``holdout_fraction`` of train tiles sorted by name, a contiguous block: neighbouring tile
            numbers share a region, so a block leaks less than a random pick; those tiles are not
            trained on and are scored on their training labels) or ``auto``: ``val`` when the val
            split's label folder holds tiles, else ``train_holdout``, said in the log (the real
            download has no val labels).
        holdout_fraction: fraction of train tiles held out when ``val_source`` is ``train_holdout``.
        val_label_set: label folder used to score validation (``official`` = the split's labels).
        samples_per_epoch: crops drawn per training epoch (None: one pass over the tiles).
        predict_split: the split whose SAR tiles ``predict`` maps (all tiles, labelled or not).
        prediction_dir: folder where ``predict`` (with the ``TileWriter`` callback) writes
            ``labels/`` (uint8 GeoTIFF 0..8 per tile) and ``soft/`` (9-band uint8 floor(255 p)), named
            like the SAR tiles; tiles whose label exists are skipped, so use a new folder for another
            model. None: ``runs/predictions/<predict_split>``.
    """

    def __init__(
        self,
        root: str,
        label_set: str = "official",
        crop_size: int = 512,
        batch_size: int = 8,
        val_batch_size: int = 1,
        num_workers: int = 2,
        scaling: SARScaling = SARScaling(),
        scale_range: tuple[float, float] = (0.5, 2.0),
        cat_max_ratio: float = 0.75,
        flip_rotate: bool = True,
        val_source: Literal["auto", "val", "train_holdout"] = "auto",
        holdout_fraction: float = 0.1,
        val_label_set: str = "official",
        samples_per_epoch: int | None = None,
        predict_split: Literal["test", "val", "train"] = "test",
        prediction_dir: str | None = None,
    ) -> None:
        super().__init__(root)
        self.save_hyperparameters()
        self.scaling = scaling  # LightningCLI stores hparams as plain dicts; keep the object
        self.train_set: TileDataset | None = None
        self.val_set: TileDataset | None = None
        self.test_set: TileDataset | None = None
        self.predict_set: TileDataset | None = None

    def setup(self, stage: str) -> None:
        """Index the tiles of the splits ``stage`` needs (headers are not read here)."""
        self.check_root()
        hp = self.hparams
        if stage in ("fit", "validate"):
            train_tiles = index_oem_sar(self.root, "train", "sar", hp.label_set)
            if self._val_source() == "train_holdout":
                n_val = max(1, math.ceil(hp.holdout_fraction * len(train_tiles)))
                if n_val >= len(train_tiles):
                    raise ValueError(f"holdout_fraction {hp.holdout_fraction} leaves no training tile")
                val_tiles = train_tiles[-n_val:]
                train_tiles = train_tiles[:-n_val]
            else:
                val_tiles = index_oem_sar(self.root, "val", "sar", hp.val_label_set)
            augment = TrainAugmentation(
                hp.crop_size,
                scale_range=tuple(hp.scale_range),
                cat_max_ratio=hp.cat_max_ratio,
                ignore_values=(BACKGROUND, PADDING),
                pad_label=PADDING,  # the task never learns padding, whatever its loss ignores
                flip_rotate=hp.flip_rotate,
            )
            self.train_set = TileDataset(train_tiles, augment, scaling=self.scaling)
            self.val_set = TileDataset(val_tiles, split="val", scaling=self.scaling)
        if stage == "test":
            tiles = index_oem_sar(self.root, "test", "sar", "official")
            self.test_set = TileDataset(tiles, split="test", scaling=self.scaling)
        if stage == "predict":
            tiles = index_oem_sar(self.root, hp.predict_split, "sar", None)
            self.predict_set = TileDataset(tiles_to_predict(tiles, self.prediction_dirs()[0]), scaling=self.scaling)

    def _val_source(self) -> Literal["val", "train_holdout"]:
        """``val_source``, with ``auto`` resolved (and said in the log) from whether the val labels exist."""
        hp = self.hparams
        if hp.val_source != "auto":
            return hp.val_source
        labels = label_folder(self.root, "val", hp.val_label_set)
        if has_tiles(labels):
            return "val"
        rank_zero_info(
            f"stage 2 validation: {labels} has no tiles; validating on a hold-out of train tiles (the last "
            f"{hp.holdout_fraction:.0%} by name, not trained on, scored on their {hp.label_set!r} labels)"
        )
        return "train_holdout"

    def prediction_dirs(self) -> tuple[Path, Path]:
        """Folders ``predict`` writes: hard labels, soft probabilities."""
        hp = self.hparams
        folder = Path(hp.prediction_dir) if hp.prediction_dir else Path("runs/predictions") / hp.predict_split
        return folder / "labels", folder / "soft"

    def _loader(self, dataset: TileDataset | None, batch_size: int, train: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError("setup() has not indexed this split")
        if not train:
            return tile_loader(dataset, batch_size, self.hparams.num_workers)
        samples, position = self.hparams.samples_per_epoch, training_position(self.trainer)
        return tile_loader(dataset, batch_size, self.hparams.num_workers, True, samples, position)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.hparams.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.hparams.val_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """Whole SAR tiles of ``predict_split`` not yet predicted, without labels."""
        return self._loader(self.predict_set, self.hparams.val_batch_size)
