"""Folder names of the two official layouts (OpenEarthMap, OpenEarthMap-SAR) and where label sets live.

Pure path logic with no heavy imports, so the stage runner can use it without loading torch.
"""

from __future__ import annotations

import os
from pathlib import Path

OEM_DIR = "OpenEarthMap"
OEM_SAR_DIR = "OpenEarthMap-SAR"
SAR_IMAGES, RGB_IMAGES, LABELS = "sar_images", "rgb_images", "labels"


def label_folder(root: str | os.PathLike, split: str, label_set: str) -> Path:
    """Folder of a label set of OpenEarthMap-SAR.

    Args:
        root: data root holding ``OpenEarthMap-SAR/``.
        split: ``train``, ``val`` or ``test``.
        label_set: ``official`` (the split's ``labels/``), or the name of a pseudo-label set under
            ``train/labels_pl/``, or any other folder name under the split (e.g. ``labels_truth``).
    """
    split_dir = Path(root) / OEM_SAR_DIR / split
    if label_set == "official":
        return split_dir / LABELS
    if (split_dir / label_set).is_dir():
        return split_dir / label_set
    return split_dir / "labels_pl" / label_set


def has_tiles(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` exists and holds at least one ``.tif``/``.tiff`` file (e.g. an optional ``val/labels``)."""
    folder = Path(folder)
    return folder.is_dir() and any(p.suffix.lower() in (".tif", ".tiff") for p in folder.iterdir())
