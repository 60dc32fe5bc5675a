"""Stage-1 LightningDataModule: labelled OpenEarthMap optical (source) + unlabelled OEM-SAR optical (target)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.utilities import CombinedLoader, rank_zero_info
from torch.utils.data import DataLoader

from datamodules.classes import PADDING
from datamodules.datasets import Tile, TileDataset, index_oem, index_oem_sar
from datamodules.layout import OEM_SAR_DIR, RGB_IMAGES, has_tiles, label_folder, pseudo_label_dirs
from datamodules.loaders import TileDataModule, tile_loader, tiles_to_predict, training_position
from datamodules.resolution_alignment import RAASettings, ResolutionAlignment
from datamodules.transforms import PhotometricDistortion, TrainAugmentation

TargetSet = Literal["oem_sar_train", "oem_sar_val", "oem_test"]


class OpticalDataModule(TileDataModule):
    """Source (OpenEarthMap, labelled) and target (OEM-SAR optical, unlabelled) tiles for stage 1.

    Training batches are ``{"source": batch, "target": batch}`` with ``batch_size`` crops each of raw
    8-bit RGB (the task normalises them); the target's ``mask`` is 255 on padding and 0 elsewhere
    (its labels are never read). Validation runs on the target domain's labelled val tiles (split
    ``val``; the synthetic data has clean truth, real users may have a manually labelled subset) and
    on the OEM val split (``val_source``), in that order. The real download has no labelled target
    optical: then (``target_val: auto``) the OEM val split alone is scored, as ``val``, and the log says
    so; the reference trains on OEM train + val and scores that same val split, so its score is a
    monitor of the fit, not of the adaptation (the pipeline feeds the last checkpoint on).

    Args:
        root: data root holding ``OpenEarthMap/`` and ``OpenEarthMap-SAR/``.
        source_splits: OEM splits used as the labelled source.
        source_val_split: OEM split scored as ``val_source`` (None: no source validation).
        target_sets: unlabelled target tiles: OEM-SAR train RGB, OEM-SAR val RGB, OEM test images.
        target_val: score the target domain on OEM-SAR ``val/rgb_images`` + ``val/labels`` (``val``);
            ``auto``: when both folders hold tiles.
        crop_size: side of the square training crops.
        batch_size: source crops and target crops per step, each.
        val_batch_size: validation batch size (whole tiles).
        num_workers: data-loader workers per loader.
        scale_range: random rescale range of both pipelines.
        cat_max_ratio: single-class cap of the source crops.
        raa: the resolution alignment augmentation of source crops (``p: 0`` turns it off; ``position``
            puts it after the crop, as the reference, or before the rescale).
        photometric: photometric distortion of source crops.
        samples_per_epoch: training steps per epoch x batch_size (None: one pass over the source).
        pseudo_label_set: name of the set ``predict`` writes: OEM-SAR ``train/labels_pl/<set>/`` (hard)
            and ``train/labels_pl_soft/<set>/`` (soft); tiles whose label exists are skipped.
    """

    def __init__(
        self,
        root: str,
        source_splits: Sequence[str] = ("train", "val"),
        source_val_split: str | None = "val",
        target_sets: Sequence[TargetSet] = ("oem_sar_train",),
        target_val: bool | Literal["auto"] = "auto",
        crop_size: int = 512,
        batch_size: int = 8,
        val_batch_size: int = 1,
        num_workers: int = 2,
        scale_range: tuple[float, float] = (0.5, 2.0),
        cat_max_ratio: float = 0.75,
        raa: RAASettings = RAASettings(),
        photometric: bool = True,
        samples_per_epoch: int | None = None,
        pseudo_label_set: str = "stage1",
    ) -> None:
        super().__init__(root)
        self.save_hyperparameters()
        self.raa = raa  # LightningCLI stores hparams as plain dicts; keep the object
        self.source_set: TileDataset | None = None
        self.target_set: TileDataset | None = None
        self.val_sets: list[TileDataset] = []
        self.predict_set: TileDataset | None = None

    def _target_tiles(self) -> list[Tile]:
        tiles: list[Tile] = []
        for name in self.hparams.target_sets:
            if name == "oem_test":
                tiles += index_oem(self.root, ["test"], with_labels=False)
            else:
                tiles += index_oem_sar(self.root, name.removeprefix("oem_sar_"), "rgb", None)
        return tiles

    def setup(self, stage: str) -> None:
        """Index source, target and validation tiles."""
        self.check_root()
        hp = self.hparams
        geometric = {"scale_range": tuple(hp.scale_range), "ignore_values": (PADDING,), "pad_label": PADDING}
        if stage == "fit":
            raa: list[Any] = [ResolutionAlignment(self.raa)] if self.raa.p > 0 else []
            after_crop = raa if self.raa.position == "after_crop" else []
            before_crop = [] if after_crop else raa
            if hp.photometric:
                before_crop.append(PhotometricDistortion())
            augment = TrainAugmentation(
                hp.crop_size,
                cat_max_ratio=hp.cat_max_ratio,
                before_crop=before_crop,
                after_crop=after_crop,
                **geometric,
            )
            self.source_set = TileDataset(index_oem(self.root, hp.source_splits), augment)
            self.target_set = TileDataset(
                self._target_tiles(), TrainAugmentation(hp.crop_size, cat_max_ratio=1.0, **geometric)
            )
        if stage in ("fit", "validate"):
            self.val_sets = []
            target_val = self._scores_target()
            # The first validation split is "val" (what checkpoints monitor): the target when scored, else the source.
            if target_val:
                self.val_sets.append(TileDataset(index_oem_sar(self.root, "val", "rgb", "official"), split="val"))
            if hp.source_val_split:
                name = "val_source" if target_val else "val"
                self.val_sets.append(TileDataset(index_oem(self.root, [hp.source_val_split]), split=name))
        if stage == "predict":
            tiles = index_oem_sar(self.root, "train", "rgb", None)
            self.predict_set = TileDataset(tiles_to_predict(tiles, self.prediction_dirs()[0]))

    def _scores_target(self) -> bool:
        """Whether the target domain is scored: ``target_val``, or with ``auto`` whether its labelled val exists."""
        hp = self.hparams
        if hp.target_val != "auto":
            return bool(hp.target_val)
        val = self.root / OEM_SAR_DIR / "val"
        missing = [f for f in (val / RGB_IMAGES, label_folder(self.root, "val", "official")) if not has_tiles(f)]
        if not missing:
            return True
        source = hp.source_val_split
        if source is None:
            rank_zero_info(f"stage 1 validation: {missing[0]} has no tiles and no source split is set: no validation")
            return False
        trained_on = " (also a training split, as in the reference: a monitor, not a hold-out)"
        rank_zero_info(
            f"stage 1 validation: no labelled target optical ({missing[0]} has no tiles); scoring the OpenEarthMap "
            f"split {source!r} as 'val'{trained_on if source in hp.source_splits else ''}"
        )
        return False

    def prediction_dirs(self) -> tuple[Path, Path]:
        """Folders of the pseudo-label set ``predict`` writes: hard labels, soft probabilities."""
        return pseudo_label_dirs(self.root, self.hparams.pseudo_label_set)

    def train_dataloader(self) -> CombinedLoader:
        if self.source_set is None or self.target_set is None:
            raise RuntimeError("setup('fit') has not run")
        hp = self.hparams
        samples = hp.samples_per_epoch or len(self.source_set)
        position = training_position(self.trainer)
        loaders = {
            name: tile_loader(dataset, hp.batch_size, hp.num_workers, True, samples, position, stream)
            for stream, (name, dataset) in enumerate((("source", self.source_set), ("target", self.target_set)))
        }
        return CombinedLoader(loaders, mode="max_size_cycle")

    def predict_dataloader(self) -> DataLoader:
        """Whole OEM-SAR train optical tiles not yet in the pseudo-label set."""
        if self.predict_set is None:
            raise RuntimeError("setup('predict') has not run")
        return tile_loader(self.predict_set, self.hparams.val_batch_size, self.hparams.num_workers)

    def val_dataloader(self) -> list[DataLoader]:
        return [tile_loader(s, self.hparams.val_batch_size, self.hparams.num_workers) for s in self.val_sets]
