"""The tile plan of a synthetic data root: which tiles exist, their names, splits, seeds and no-data wedges."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sar_synthetic.config import SyntheticConfig
from sar_synthetic.georeference import oem_region_names

_DATASET_CODES = {"oem": 1, "train": 2, "val": 3, "test": 4, "split": 5}
SAR_PREFIX = {"train": "TrainArea", "val": "ValArea", "test": "TestArea"}


def tile_rng(seed: int, dataset: str, index: int, purpose: int) -> np.random.Generator:
    """A generator seeded by (seed, dataset, tile index, purpose), independent of global state."""
    return np.random.default_rng([seed, _DATASET_CODES[dataset], index, purpose])


class PlannedTile(NamedTuple):
    """One unit of work: a tile of one dataset."""

    dataset: str  # "oem", "train", "val" or "test"
    index: int  # 0-based within its dataset (OEM: global index over regions)
    name: str  # file name, e.g. "aachen_1.tif" or "TrainArea_001.tif"
    size: int


def oem_tiles(config: SyntheticConfig) -> list[PlannedTile]:
    """All OEM tiles; the last tile of every other region is smaller (3/4 of the tile size)."""
    tiles = []
    for r, region in enumerate(oem_region_names(config.oem_regions)):
        for n in range(1, config.oem_tiles_per_region + 1):
            small = r % 2 == 1 and n == config.oem_tiles_per_region
            size = round(0.75 * config.tile_size) if small else config.tile_size
            tiles.append(PlannedTile("oem", len(tiles), f"{region}_{n}.tif", size))
    return tiles


def sar_tiles(config: SyntheticConfig) -> list[PlannedTile]:
    """All OEM-SAR tiles of the three splits."""
    counts = {"train": config.sar_train_tiles, "val": config.sar_val_tiles, "test": config.sar_test_tiles}
    width = max(3, len(str(max(counts.values()))))
    return [
        PlannedTile(split, i, f"{SAR_PREFIX[split]}_{i + 1:0{width}d}.tif", config.tile_size)
        for split, count in counts.items()
        for i in range(count)
    ]


def oem_splits(config: SyntheticConfig, names: list[str]) -> dict[str, list[str]]:
    """A deterministic ~60/20/20 split of the OEM tiles by file name."""
    order = tile_rng(config.seed, "split", 0, 0).permutation(len(names))
    n_train = round(0.6 * len(names))
    n_val = round(0.2 * len(names))
    shuffled = [names[i] for i in order]
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }


def wedge_tiles(config: SyntheticConfig) -> set[int]:
    """Indices of the test tiles that get a no-data wedge."""
    count = round(config.nodata_test_fraction * config.sar_test_tiles)
    chosen = tile_rng(config.seed, "test", 0, 99).permutation(config.sar_test_tiles)[:count]
    return {int(i) for i in chosen}


def sar_content_scale(config: SyntheticConfig, sar_gsd: float, optical_gsd: float) -> float:
    """How much larger a scene appears on an OEM-SAR grid than at the native (OEM) scale.

    The optical source of a tile has an OEM-like GSD; the tile's grid has the SAR GSD. Objects are
    ``optical_gsd / sar_gsd`` times larger in grid pixels, scaled towards 1 by ``domain_gap``.
    """
    return 1.0 + config.domain_gap * (optical_gsd / sar_gsd - 1.0)
