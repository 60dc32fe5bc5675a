"""The prediction-writer callback of ``predict``: each tile's label and soft map written as it comes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from sar_inference.tile_writer import write_tile_prediction


class TileWriter(BasePredictionWriter):
    """Writes each predicted tile as it comes: ``<label_dir>/<name>`` and ``<soft_dir>/<name>``.

    The label is a uint8 GeoTIFF (0..8, class colour map) and the soft map a 9-band uint8 GeoTIFF
    of floor(255 p), both on the grid (size, CRS, transform) of the tile's ``grid`` raster, the SAR
    tile for OEM-SAR optical. Files are written atomically, soft map first, so an existing label
    means a complete tile (the datamodule skips those on a re-run). Under DDP every rank writes
    only the tiles of its own shard, so each tile is written once.

    The folders default to the datamodule's ``prediction_dirs()`` (e.g. a pseudo-label set).

    Args:
        label_dir: folder of the hard labels (None: from the datamodule).
        soft_dir: folder of the soft maps (None: from the datamodule; "" for no soft maps).
    """

    def __init__(self, label_dir: str | None = None, soft_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.label_dir = Path(label_dir) if label_dir else None
        self.soft_dir = soft_dir

    def folders(self, datamodule: L.LightningDataModule | None) -> tuple[Path, Path | None]:
        """The label and soft-map folders this writer fills with the predictions of ``datamodule``'s tiles."""
        defaults = datamodule.prediction_dirs() if hasattr(datamodule, "prediction_dirs") else None
        label_dir = self.label_dir or (defaults[0] if defaults else None)
        if label_dir is None:
            raise ValueError("TileWriter needs label_dir, or a datamodule with prediction_dirs()")
        if self.soft_dir == "":
            return label_dir, None
        return label_dir, Path(self.soft_dir) if self.soft_dir else (defaults[1] if defaults else None)

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: dict[str, Any],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        label_dir, soft_dir = self.folders(trainer.datamodule)
        for name, grid, probs in zip(prediction["name"], prediction["grid"], prediction["probs"], strict=True):
            write_tile_prediction(probs, name, grid, label_dir, soft_dir)
