"""Folder names of the two official layouts (OpenEarthMap, OpenEarthMap-SAR), where label sets live, and safe names.

Pure path logic with no heavy imports, so the stage runner can use it without loading torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from datamodules.errors import DataError

OEM_DIR = "OpenEarthMap"
OEM_SAR_DIR = "OpenEarthMap-SAR"
DATA_DIRS = (OEM_DIR, OEM_SAR_DIR)
"""A folder holding either of these is a data root."""
SAR_IMAGES, RGB_IMAGES, LABELS = "sar_images", "rgb_images", "labels"
PSEUDO_LABELS, PSEUDO_LABELS_SOFT = "labels_pl", "labels_pl_soft"
"""Folders under OEM-SAR ``train/`` holding one folder per pseudo-label set (hard labels, soft maps)."""
SYNTHETIC_MARKER = "SYNTHETIC.json"
"""Written by the synthetic-data generator at the top of every data root it made."""
NOISE_MODEL_LABELS = "labels_noise_model"
"""Where ``install-official-labels`` keeps the generator's own ``train/labels`` of synthetic data."""
OFFICIAL_LABELS_RECORD = "OFFICIAL_LABELS.json"
"""The record ``install-official-labels`` writes under OEM-SAR ``train/`` of synthetic data."""


class UnsafeNameError(DataError):
    """A name that becomes part of a path (set, tile, run, model) could leave the folder it belongs in."""


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it can be one file or folder name inside its root; raise otherwise.

    Refused: an empty name, ``.`` and ``..`` (and any name starting with a dot, the project's own
    hidden files), path separators (``/`` or ``\\``, so no absolute path either) and control
    characters.

    Args:
        name: the name to check.
        what: what the name is, for the error (e.g. ``"label-set name"``).

    Raises:
        UnsafeNameError: naming the name and what is wrong with it.
    """
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    if not name:
        problem = "is empty"
    elif name.startswith("."):
        problem = "starts with '.' ('..' would leave its folder; other dot names are the project's hidden files)"
    elif any(s in name for s in separators):
        problem = "holds a path separator ('/' or '\\'); it must be a plain name, not a path"
    elif any(ord(c) < 32 for c in name):
        problem = "holds a control character"
    else:
        return name
    raise UnsafeNameError(repr(name), f"{what} {problem}")


def label_folder(root: str | os.PathLike, split: str, label_set: str) -> Path:
    """Folder of a label set of OpenEarthMap-SAR, to read from.

    Args:
        root: data root holding ``OpenEarthMap-SAR/``.
        split: ``train``, ``val`` or ``test``.
        label_set: ``official`` (the split's ``labels/``), or the name of a pseudo-label set under
            ``train/labels_pl/``, or any other folder name under the split (e.g. ``labels_truth``).

    Raises:
        UnsafeNameError: a split or set name that is not a plain folder name.
    """
    split_dir = Path(root) / OEM_SAR_DIR / check_name(split, "split name")
    if check_name(label_set, "label-set name") == "official":
        return split_dir / LABELS
    if (split_dir / label_set).is_dir():
        return split_dir / label_set
    return split_dir / PSEUDO_LABELS / label_set


def pseudo_label_dirs(root: str | os.PathLike, label_set: str) -> tuple[Path, Path]:
    """Where a new pseudo-label set is written: ``train/labels_pl/<set>`` (hard) and ``train/labels_pl_soft/<set>``.

    Raises:
        UnsafeNameError: a set name that is not a plain folder name, or one that :func:`label_folder`
            would read from another folder (``official`` or a folder of ``train/`` such as ``labels``).
    """
    train = Path(root) / OEM_SAR_DIR / "train"
    check_name(label_set, "pseudo-label set name")
    if label_set == "official" or (train / label_set).exists():
        where = LABELS if label_set == "official" else label_set
        raise UnsafeNameError(
            repr(label_set), f"pseudo-label set name is taken by the data's own folder {train / where}; choose another"
        )
    return train / PSEUDO_LABELS / label_set, train / PSEUDO_LABELS_SOFT / label_set


def has_tiles(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` exists and holds at least one ``.tif``/``.tiff`` file (e.g. an optional ``val/labels``)."""
    folder = Path(folder)
    return folder.is_dir() and any(p.suffix.lower() in (".tif", ".tiff") for p in folder.iterdir())
