"""Selection across pseudo-label sets (docs/method.md section 3), writing a new set; both threshold-free.

- ``agreement``: keep the label where two sets agree, 0 elsewhere (stage 2 ignores 0);
- ``soft_ensemble``: sum the soft maps of N sets and take the argmax.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from datamodules.layout import label_folder, pseudo_label_dirs
from datamodules.output_safety import Output, check_outputs
from datamodules.rasters import DataError, raster_info, read_label, read_raster, write_label_like
from sar_inference.engine import agreement, soft_ensemble_labels


def _common_tiles(folders: list[Path]) -> list[str]:
    """Tile names present in every folder; tiles missing from some are reported once."""
    names = []
    for folder in folders:
        if not folder.is_dir():
            raise DataError(folder, "pseudo-label folder does not exist")
        names.append({p.name for p in folder.glob("*.tif")})
    common = set.intersection(*names)
    missing = sorted(set.union(*names) - common)
    if missing:
        warnings.warn(f"{len(missing)} tile(s) missing from some sets are left out: {missing[:20]}", stacklevel=3)
    if not common:
        raise DataError(folders[0], f"no tile is present in all of {[str(f) for f in folders]}")
    return sorted(common)


def select_pseudo_labels(
    root: str,
    sets: list[str],
    output: str,
    mode: Literal["agreement", "soft_ensemble"] = "agreement",
    progress: bool = True,
) -> Path:
    """Write the pseudo-label set ``output`` selected from ``sets`` under ``train/labels_pl/``.

    Args:
        root: data root holding ``OpenEarthMap-SAR/``.
        sets: input sets: exactly two for ``agreement``; one or more for ``soft_ensemble`` (which
            reads their soft maps under ``train/labels_pl_soft/``).
        output: name of the new set; tiles it already holds are skipped (resumable).
        mode: ``agreement`` (disagreement -> 0, ignored by stage 2) or ``soft_ensemble``.
        progress: show a progress bar.

    Returns:
        The folder of the new set.

    Raises:
        UnsafeNameError: a set name that is not a plain folder name.
        OutputRefusedError: the new set's folder holds files this project did not write.
        DataError: a missing set folder, no common tile, or tiles of different sizes.
        ValueError: the wrong number of sets for the mode, or an output that is one of the inputs.
    """
    root_path = Path(root)
    if mode == "agreement" and len(sets) != 2:
        raise ValueError(f"agreement selects between exactly two sets, got {len(sets)}: {sets}")
    if not sets or output in sets:
        raise ValueError(f"output set {output!r} must be new and differ from the inputs {sets}")
    hard = [label_folder(root_path, "train", s) for s in sets]
    sources = hard if mode == "agreement" else [pseudo_label_dirs(root_path, s)[1] for s in sets]
    out_dir = pseudo_label_dirs(root_path, output)[0]
    check_outputs("select-pseudo-labels", [Output(out_dir, "folder", "--output")], inputs=[*hard, *sources])
    for name in tqdm(_common_tiles(sources), desc=f"{mode} -> {output}", unit="tile", disable=not progress):
        target = out_dir / name
        if target.is_file():
            continue
        if mode == "agreement":
            labels = [torch.from_numpy(read_label(folder / name)) for folder in sources]
            _check_sizes([folder / name for folder in sources], [lab.shape for lab in labels])
            label = agreement(labels[0], labels[1])
        else:
            soft = [torch.from_numpy(read_raster(folder / name)) for folder in sources]
            _check_sizes([folder / name for folder in sources], [s.shape for s in soft])
            label = soft_ensemble_labels(soft)
        write_label_like(target, label.numpy().astype(np.uint8), raster_info(hard[0] / name))
    return out_dir


def _check_sizes(paths: list[Path], shapes: list[torch.Size]) -> None:
    for path, shape in zip(paths[1:], shapes[1:], strict=True):
        if shape != shapes[0]:
            raise DataError(path, f"shape {tuple(shape)} differs from {paths[0]} {tuple(shapes[0])}")
