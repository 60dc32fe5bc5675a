"""Tile indexes for the OpenEarthMap and OpenEarthMap-SAR layouts, and the dataset that reads them.

Layouts (one data root holds both datasets)::

    <root>/OpenEarthMap/<region>/images/<region>_<n>.tif      3-band optical
    <root>/OpenEarthMap/<region>/labels/<region>_<n>.tif      labels 0..8
    <root>/OpenEarthMap/{train,val,test}.txt                  file names of each split
    <root>/OpenEarthMap-SAR/<split>/sar_images/<tile>.tif     1-band SAR
    <root>/OpenEarthMap-SAR/<split>/rgb_images/<tile>.tif     3-band optical on the SAR grid
    <root>/OpenEarthMap-SAR/<split>/labels/<tile>.tif         official (noisy) labels
    <root>/OpenEarthMap-SAR/train/labels_pl/<set>/<tile>.tif  a pseudo-label set
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.layout import OEM_DIR, OEM_SAR_DIR, RGB_IMAGES, SAR_IMAGES, UnsafeNameError, check_name, label_folder
from datamodules.rasters import DataError, raster_info, read_label, read_raster
from datamodules.sar_scaling import SARScaling, read_sar

Modality = Literal["sar", "rgb"]
BANDS: dict[str, int] = {"sar": 1, "rgb": 3}


@dataclass(frozen=True)
class Tile:
    """One sample on disk: an image, its optional label, and the band count the image must have.

    ``grid`` names a raster whose size the image must share (the SAR tile of an RGB image).
    """

    name: str
    image: Path
    label: Path | None
    bands: int
    grid: Path | None = None


def _tif_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DataError(folder, "folder does not exist")
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not names:
        raise DataError(folder, "folder holds no .tif files")
    return names


def _warn_skipped(skipped: list[str], partner: Path) -> None:
    if skipped:
        shown = ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else "")
        warnings.warn(f"skipping {len(skipped)} tile(s) without a partner in {partner}: {shown}", stacklevel=3)


def index_oem_sar(
    root: str | os.PathLike,
    split: str,
    modality: Modality = "sar",
    label_set: str | None = "official",
) -> list[Tile]:
    """List the tiles of one OpenEarthMap-SAR split, paired by file name.

    The SAR folder defines the tiles. A tile whose required partner (the RGB image when the
    modality is ``rgb``, the label when ``label_set`` is given) is missing is skipped, with one
    warning naming the skipped tiles.

    Raises:
        DataError: a missing or empty folder, or no tile left after pairing.
    """
    split_dir = Path(root) / OEM_SAR_DIR / split
    names = _tif_names(split_dir / SAR_IMAGES)
    image_dir = split_dir / (RGB_IMAGES if modality == "rgb" else SAR_IMAGES)
    if modality == "rgb":
        available = set(_tif_names(split_dir / RGB_IMAGES))
        _warn_skipped([n for n in names if n not in available], split_dir / RGB_IMAGES)
        names = [n for n in names if n in available]
    labels_dir = None
    if label_set is not None:
        labels_dir = label_folder(root, split, label_set)
        available = set(_tif_names(labels_dir))
        _warn_skipped([n for n in names if n not in available], labels_dir)
        names = [n for n in names if n in available]
    if not names:
        raise DataError(split_dir, "no complete tile after pairing images with their partners")
    sar_dir = split_dir / SAR_IMAGES
    return [
        Tile(
            n,
            image_dir / n,
            labels_dir / n if labels_dir else None,
            BANDS[modality],
            grid=sar_dir / n if modality == "rgb" else None,
        )
        for n in names
    ]


def index_oem(root: str | os.PathLike, splits: Sequence[str], with_labels: bool = True) -> list[Tile]:
    """List the OpenEarthMap tiles named in the split files (``train.txt`` etc.).

    A listed tile whose image is missing is skipped with one warning: the OpenEarthMap download
    ("OpenEarthMap_wo_xBD") lists its xBD tiles in the split files and ships their labels, but not
    their images (its ``xbd_files.csv`` says how to add them).

    Raises:
        DataError: a missing or empty split file, a name in it that is not a plain file name (``..``,
            a separator), or no labelled tile left.
    """
    oem = Path(root) / OEM_DIR
    tiles: list[Tile] = []
    for split in splits:
        split_file = oem / f"{split}.txt"
        if not split_file.is_file():
            raise DataError(split_file, "split list does not exist")
        names = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        if not names:
            raise DataError(split_file, "split list is empty")
        for name in names:  # a listed name is joined to the data root: it must not lead out of it
            try:
                check_name(name, "tile name")
            except UnsafeNameError as error:
                raise DataError(split_file, f"lists {error}") from None
        missing_labels: list[str] = []
        missing_images: list[str] = []
        for name in names:
            region = name.rsplit("_", 1)[0]
            image = oem / region / "images" / name
            if not image.is_file():
                missing_images.append(name)
                continue
            label = oem / region / "labels" / name
            if with_labels and not label.is_file():
                missing_labels.append(name)
                continue
            tiles.append(Tile(name, image, label if with_labels else None, BANDS["rgb"]))
        _warn_skipped(missing_labels, oem / "<region>" / "labels")
        if missing_images:
            shown = ", ".join(missing_images[:20]) + (" ..." if len(missing_images) > 20 else "")
            warnings.warn(
                f"{split_file}: skipping {len(missing_images)} listed tile(s) whose image is missing from "
                f"<region>/images (the download without xBD lacks those; see its xbd_files.csv): {shown}",
                stacklevel=2,
            )
    if not tiles:
        raise DataError(oem, f"no labelled tile in splits {list(splits)}")
    return tiles


def read_tile(tile: Tile, scaling: SARScaling | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a tile as an (H, W, C) image and an (H, W) uint8 label (or None).

    Args:
        tile: the tile.
        scaling: for a SAR tile, how its values become 8-bit amplitude (the contract is checked; its
            own nodata pixels read 0); None reads the pixels as they are.

    Raises:
        DataError: unreadable file, wrong band count, NaN/inf, bad label values, values the scaling
            would misread, or image and label of different sizes (the message names both files).
    """
    image = read_raster(tile.image, bands=tile.bands) if scaling is None else read_sar(tile.image, scaling)[0]
    height, width = image.shape[1:]
    if tile.grid is not None:
        grid = raster_info(tile.grid)
        if grid.shape != (height, width):
            raise DataError(tile.image, f"size {width}x{height} differs from {tile.grid} ({grid.width}x{grid.height})")
    label = None
    if tile.label is not None:
        label = read_label(tile.label)
        if label.shape != (height, width):
            raise DataError(
                tile.label,
                f"size {label.shape[1]}x{label.shape[0]} differs from its image {tile.image} ({width}x{height})",
            )
    return np.moveaxis(image, 0, -1), label


class TileDataset(Dataset):
    """Reads tiles and applies an optional (image, label) augmentation.

    Items are dicts: ``image`` (C, H, W) tensor of raw pixel values, ``mask`` (H, W) int64 tensor,
    ``name``, ``grid`` (the raster whose georeferencing outputs copy) and ``split`` (the name a
    task's metrics take, e.g. ``val``). SAR tiles read through ``scaling`` are 8-bit. Unlabelled
    tiles have no ``mask`` unless augmented; then it is 0 on image pixels and the augmentation's pad
    label on padding. Normalisation happens on the batch, in the task, after transfer to the device.
    """

    def __init__(
        self,
        tiles: Sequence[Tile],
        augment: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
        split: str = "train",
        scaling: SARScaling | None = None,
    ) -> None:
        self.tiles = list(tiles)
        self.augment = augment
        self.split = split
        self.scaling = scaling

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor | str]:
        """Item ``index``; a ``(index, seed)`` pair (from a seeded sampler) first reseeds the augmentation."""
        if isinstance(index, tuple):
            index, seed = index
            reseed = getattr(self.augment, "reseed", None)
            if reseed is not None:
                reseed(seed)
        tile = self.tiles[index]
        image, label = read_tile(tile, self.scaling)
        if self.augment is not None:
            if label is None:  # unlabelled: after padding, the mask marks padded pixels with PADDING
                label = np.zeros(image.shape[:2], np.uint8)
            image, label = self.augment(image, label)
        item: dict[str, torch.Tensor | str] = {
            "image": torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0))),
            "name": tile.name,
            "grid": str(tile.grid or tile.image),
            "split": self.split,
        }
        if label is not None:
            item["mask"] = torch.from_numpy(np.ascontiguousarray(label)).long()
        return item
