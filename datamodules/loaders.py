"""What the stage-1 and stage-2 datamodules share: the data root, loaders (sampling, seeding)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, RandomSampler, get_worker_info

from datamodules.datasets import Tile, TileDataset
from datamodules.rasters import DataError
from datamodules.transforms import TrainAugmentation


def seed_worker_augmentation(worker_id: int) -> None:
    """Give each loader worker its own, reproducible augmentation stream (derived from torch's seed)."""
    info = get_worker_info()
    augment = getattr(info.dataset, "augment", None) if info else None
    if isinstance(augment, TrainAugmentation):
        augment.reseed(torch.initial_seed() % 2**31)


def tile_loader(
    dataset: TileDataset, batch_size: int, num_workers: int, train: bool = False, samples: int | None = None
) -> DataLoader:
    """A loader over tiles; for training, ``samples`` random items per epoch (default: one pass).

    Training augmentation in the main process is seeded from torch's RNG (which seed_everything
    sets); workers reseed themselves from their own torch seed.
    """
    sampler = None
    if train:
        if isinstance(dataset.augment, TrainAugmentation):
            dataset.augment.reseed(int(torch.randint(0, 2**31 - 1, ()).item()))
        samples = samples or len(dataset)
        sampler = RandomSampler(dataset, num_samples=samples)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        worker_init_fn=seed_worker_augmentation,
        drop_last=train and (samples or 0) >= batch_size,
    )


def tiles_to_predict(tiles: list[Tile], label_dir: Path) -> list[Tile]:
    """The tiles whose label is not yet in ``label_dir``: a re-run of ``predict`` resumes where it stopped."""
    todo = [t for t in tiles if not (label_dir / t.name).is_file()]
    if len(todo) < len(tiles):
        rank_zero_info(f"{len(tiles) - len(todo)} of {len(tiles)} tiles already in {label_dir}: skipped")
    return todo


class TileDataModule(L.LightningDataModule):
    """Base of the tile datamodules: the data root.

    Batches hold raw pixels: the task that consumes them owns their normalisation. Subclasses
    declare every option as a typed ``__init__`` argument (so ``--print_config`` shows it) and pass
    the root on.
    """

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = Path(root)

    def prepare_data(self) -> None:
        """Fail early on a missing data root: before the loggers start (``setup`` checks again on every rank)."""
        self.check_root()

    def check_root(self) -> None:
        """Raise a one-line error naming the data root if it does not exist (called first by ``setup``).

        Raises:
            DataError: the root is missing; the message says how to generate the synthetic demo there.
        """
        if not self.root.is_dir():
            raise DataError(
                self.root,
                "data root does not exist; point data.root at the folder holding OpenEarthMap/ and OpenEarthMap-SAR/, "
                f"or generate the synthetic demo data there: python cli.py make-demo-data --root {self.root}",
            )
