"""A replica of the real DFC2025 download's shape: the generator's tiles, laid out as the organisers ship them.

What differs from the demo layout (``layout_writer``), and why: the real download is what a
researcher points the tools at, so the replica has exactly its folders and nothing more inside them::

    OpenEarthMap/<region>/images/<region>_<n>.tif        1024 x 1024 RGB (one region without images:
    OpenEarthMap/<region>/labels/<region>_<n>.tif        the download without xBD lists and labels its
    OpenEarthMap/{train,val,test}.txt                    xBD tiles but ships no image of them; test
                                                         tiles have no label: those are not public)
    OpenEarthMap-SAR/train/{sar_images,rgb_images,labels}/TrainArea_###.tif   (the last train tile has no RGB)
    OpenEarthMap-SAR/val/sar_images/ValArea_###.tif      SAR only: no val/labels, no val/rgb_images
    OpenEarthMap-SAR/test/sar_images/TestArea_###.tif    SAR only, some with black no-data wedges
    replica_truth/OpenEarthMap-SAR/...                   the clean truth (train/labels, val/labels,
                                                         val/rgb_images, test/labels) and the OpenEarthMap
    replica_truth/OpenEarthMap/<region>/labels/          test labels, outside the layout, for benchmarks
    REPLICA.json                                         the settings; marks the replica complete

Tiles are 1024 x 1024 uint8 (SAR: one band of relative 8-bit amplitude, a rotated UTM grid), small in
count. The names follow the download: ``TrainArea_001.tif`` (OEM-SAR, three digits or more),
``<region>_<n>.tif`` (OpenEarthMap, regions named like its cities).
The tiles are the generator's own (its output is unchanged); only the layout is the download's.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import asdict
from pathlib import Path

from datamodules.layout import LABELS, OEM_DIR, OEM_SAR_DIR, RGB_IMAGES
from sar_synthetic.config import SyntheticConfig
from sar_synthetic.georeference import oem_region_names
from sar_synthetic.layout_writer import MARKER as DEMO_MARKER
from sar_synthetic.layout_writer import OPTICAL_DATE, _partial_folder, _write_all
from sar_synthetic.tiles import oem_splits, oem_tiles

MARKER = "REPLICA.json"
TRUTH_DIR = "replica_truth"
REPLICA_SETTINGS = SyntheticConfig(
    tile_size=1024, oem_regions=4, oem_tiles_per_region=3, sar_train_tiles=8, sar_val_tiles=2, sar_test_tiles=3
)
"""The replica's default size: 1024 px tiles (the real size), a few of each, about a minute to write on 2 cores."""

_MOVED_TO_TRUTH = (
    ("train", "labels_truth", "train/labels"),
    ("train", OPTICAL_DATE, f"train/{OPTICAL_DATE}"),  # what the optical date shows: generator truth too
    ("val", RGB_IMAGES, f"val/{RGB_IMAGES}"),
    ("val", LABELS, f"val/{LABELS}"),
    ("test", LABELS, f"test/{LABELS}"),
)


def replica_complete(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a complete replica (its ``REPLICA.json`` marker is readable)."""
    try:
        return isinstance(json.loads((Path(root) / MARKER).read_text()), dict)
    except (OSError, ValueError):
        return False


def xbd_like_region(settings: SyntheticConfig) -> str | None:
    """The OpenEarthMap region written without images: the last one whose loss leaves every split a tile with one.

    None when no region can go (a single region, or every split depending on each).
    """
    names = [t.name for t in oem_tiles(settings)]
    splits = oem_splits(settings, names).values()
    for region in reversed(oem_region_names(settings.oem_regions)[1:]):
        if all(any(n.rsplit("_", 1)[0] != region for n in split) for split in splits):
            return region
    return None


def _truth_path(partial: Path, oem_name: str) -> Path:
    """Where the truth of an OpenEarthMap test tile goes: ``replica_truth/OpenEarthMap/<region>/labels/``."""
    path = partial / TRUTH_DIR / OEM_DIR / oem_name.rsplit("_", 1)[0] / LABELS / oem_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _as_download(partial: Path, settings: SyntheticConfig) -> None:
    """Turn a demo layout into the download's: truth out of the layout, SAR-only val/test, an image-less region."""
    sar, truth = partial / OEM_SAR_DIR, partial / TRUTH_DIR / OEM_SAR_DIR
    for split, folder, destination in _MOVED_TO_TRUTH:
        if (sar / split / folder).is_dir():
            (truth / destination).parent.mkdir(parents=True, exist_ok=True)
            os.rename(sar / split / folder, truth / destination)
    region = xbd_like_region(settings)
    if region is not None:
        shutil.rmtree(partial / OEM_DIR / region / "images")
    for name in (partial / OEM_DIR / "test.txt").read_text().split():  # OpenEarthMap's test labels are not public
        os.rename(partial / OEM_DIR / name.rsplit("_", 1)[0] / LABELS / name, _truth_path(partial, name))
    (partial / DEMO_MARKER).unlink()
    record = {"settings": asdict(settings), "image_less_region": region, "truth": TRUTH_DIR}
    (partial / MARKER).write_text(json.dumps(record, indent=2) + "\n")


def generate_replica(
    root: str | os.PathLike, settings: SyntheticConfig = REPLICA_SETTINGS, progress: bool = True
) -> Path:
    """Write the replica of the DFC2025 download's layout under ``root`` (see the module docstring).

    Written into a hidden sibling folder renamed to ``root`` when complete, as the demo data is.

    Args:
        root: destination folder; it must not exist, be empty, or already be a complete replica.
        settings: size, seed and difficulty of the tiles (default: ``REPLICA_SETTINGS``, 1024 px).
        progress: show a progress bar over tiles.

    Raises:
        FileExistsError: ``root`` exists and is not a complete replica (it is left untouched).
    """
    root = Path(root)
    if replica_complete(root):
        stored = json.loads((root / MARKER).read_text()).get("settings")
        if stored != json.loads(json.dumps(asdict(settings))):
            warnings.warn(f"{root} already holds a replica made with {stored}; keeping it", stacklevel=2)
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root} exists but is not a complete replica (no valid {MARKER}); refusing to write into it. "
            "Point --root at a new folder, or remove this one yourself."
        )
    with _partial_folder(root) as partial:
        _write_all(partial, settings, progress)
        _as_download(partial, settings)
        os.rename(partial, root)
    return root
