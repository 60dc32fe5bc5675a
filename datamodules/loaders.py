"""What the stage-1 and stage-2 datamodules share: the data root, loaders (sampling, seeding)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, DistributedSampler

from datamodules.datasets import Tile, TileDataset
from datamodules.rasters import DataError


class SeededSampler(DistributedSampler):
    """Training draws that are a pure function of (seed, epoch, position), split across DDP ranks.

    Each epoch draws ``samples`` tile indices (shuffled passes over the dataset, the last one
    partial) from a generator seeded by (seed, epoch); rank r of W takes positions r, r + W, ...
    Every position also carries its own augmentation seed, so a crop depends neither on the rank's
    stream, the number of loader workers nor the draws before it: ranks augment differently, a
    re-run repeats itself, and a fit resumed mid-epoch (:meth:`resume_at`) gets exactly the draws
    an uninterrupted one would. Items are ``(tile index, augmentation seed)`` pairs for
    :class:`~datamodules.datasets.TileDataset`. A DistributedSampler so that Lightning keeps it as
    it is instead of wrapping it in its own.

    Args:
        size: number of tiles.
        samples: draws per epoch over all ranks (each rank takes ``samples // world size``).
        seed: base seed (the tile loader passes ``seed_everything``'s).
        stream: tells apart samplers of one seed (stage 1's source and target crops).
    """

    def __init__(self, size: int, samples: int, seed: int, stream: int = 0) -> None:
        # Not DistributedSampler.__init__: it needs torch.distributed at construction; the world is read per epoch.
        if size < 1 or samples < 1:
            raise ValueError(f"a training sampler needs tiles and draws, got {size} tiles and {samples} draws")
        self.size, self.samples, self.seed, self.stream = size, samples, seed, stream
        self.epoch = 0
        self._skip = 0

    @staticmethod
    def _world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return self.samples // self._world()[1]

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose draws the next iteration yields (Lightning calls this before every epoch)."""
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch

    def resume_at(self, epoch: int, consumed: int) -> None:
        """Let the next iteration start in ``epoch`` after this rank's first ``consumed`` draws."""
        if consumed >= len(self):
            epoch, consumed = epoch + 1, 0
        self.epoch, self._skip = epoch, consumed

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rank, world = self._world()
        rng = np.random.default_rng([self.seed, self.stream, self.epoch])
        passes = -(-self.samples // self.size)
        order = np.concatenate([rng.permutation(self.size) for _ in range(passes)])
        skip, self._skip = self._skip, 0
        for i in range(skip, self.samples // world):
            position = i * world + rank
            augment_seed = np.random.SeedSequence([self.seed, self.stream, self.epoch, position]).generate_state(1)[0]
            yield int(order[position]), int(augment_seed) % 2**31


def training_position(trainer: L.Trainer | None) -> tuple[int, int]:
    """(epoch, batches of it already trained) of a fit; (0, 0) unless it resumes from a checkpoint.

    Lightning restores its loop progress before it asks for the train loader, but fetches the first
    batch before it calls ``set_epoch``: a resumed loader must start at the right place by itself.
    """
    if trainer is None:
        return 0, 0
    loop = trainer.fit_loop
    return loop.epoch_progress.current.processed, loop.epoch_loop.batch_progress.current.ready


def tile_loader(
    dataset: TileDataset,
    batch_size: int,
    num_workers: int,
    train: bool = False,
    samples: int | None = None,
    position: tuple[int, int] = (0, 0),
    stream: int = 0,
) -> DataLoader:
    """A loader over tiles; for training, ``samples`` random draws per epoch (default: one pass).

    Training draws come from a :class:`SeededSampler` seeded by ``seed_everything`` (torch's initial
    seed) and ``stream``, starting at ``position`` (epoch, batches already trained; see
    :func:`training_position`).
    """
    sampler = None
    if train:
        samples = samples or len(dataset)
        sampler = SeededSampler(len(dataset), samples, torch.initial_seed() % 2**31, stream)
        sampler.resume_at(position[0], position[1] * batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
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
