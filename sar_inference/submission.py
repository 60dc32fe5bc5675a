"""``python cli.py submit``: the contest submission, one uint8 PNG (0..8) per SAR test tile and a zip of them.

Each tile's label is the class-weighted argmax of the ensemble of its soft maps (folders written
by ``predict``) and/or of checkpoints run on the SAR tile directly, with the tile's own nodata and
the no-data region of the reference's rule (docs/method.md section 5) set to 0.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from datamodules.classes import NUM_CLASSES
from datamodules.layout import check_name
from datamodules.nodata import NoDataRule
from datamodules.output_safety import Output, check_outputs
from datamodules.rasters import DataError, atomic_output_dir, raster_info, read_raster, write_png
from datamodules.sar_scaling import SARScaling, read_sar
from sar_inference.engine import uint8_to_soft
from sar_inference.memory_budget import check_memory
from sar_inference.predictor import EnsembleSettings, TaskPredictor, combine, load_predictor
from sar_inference.runtimes import RuntimeSettings
from sar_inference.settings import InferenceOverrides


def soft_folder(folder: Path) -> Path:
    """The folder of soft maps: ``folder`` itself, or its ``soft/`` (a ``predict`` output folder)."""
    if not folder.is_dir():
        raise DataError(folder, "soft-map folder does not exist")
    nested = folder / "soft"
    return nested if nested.is_dir() and not any(folder.glob("*.tif")) else folder


def read_soft(path: Path, shape: tuple[int, int], sar: Path) -> Tensor:
    """A 9-band uint8 soft map as float probabilities, checked against its SAR tile's size."""
    if not path.is_file():
        raise DataError(path, f"missing: no prediction for the SAR tile {sar}")
    soft = read_raster(path, bands=NUM_CLASSES)
    if soft.shape[1:] != shape:
        raise DataError(
            path, f"size {soft.shape[2]}x{soft.shape[1]} differs from its SAR tile {sar} ({shape[1]}x{shape[0]})"
        )
    return uint8_to_soft(torch.from_numpy(soft))


def write_zip(path: Path, files: list[Path]) -> Path:
    """Zip ``files`` flat (by name), deflate-compressed."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, arcname=file.name)
    return path


def submit(
    output: str,
    sar_dir: str,
    soft_dirs: list[str] | None = None,
    ckpt_path: str | list[str] | None = None,
    ensemble: EnsembleSettings = EnsembleSettings(),
    inference: InferenceOverrides = InferenceOverrides(),
    nodata: NoDataRule = NoDataRule(),
    scaling: SARScaling = SARScaling(),
    runtime: RuntimeSettings = RuntimeSettings(),
    zip_name: str = "submission.zip",
    max_memory_gb: float | None = None,
    progress: bool = True,
) -> Path:
    """Write ``output/<tile>.png`` (single band, uint8 0..8) for every SAR tile, and ``output/<zip_name>``.

    The folder is written under a temporary name and replaces ``output`` only when complete, and only
    if ``output`` is new, empty or an earlier submission (see :mod:`datamodules.output_safety`).

    Args:
        output: the submission folder.
        sar_dir: the SAR test tiles (``OpenEarthMap-SAR/test/sar_images``); one PNG per ``.tif``,
            same base name.
        soft_dirs: folders of 9-band uint8 soft maps named like the SAR tiles, as ``predict``
            writes them (a folder holding ``soft/`` is taken to mean that subfolder).
        ckpt_path: stage-2 checkpoint(s) to run on the SAR tiles directly (sliding window + TTA).
        ensemble: one weight per source, soft folders first, then checkpoints (default 1 each), and
            the class weights of the argmax (default: class 0 weight 0 when several sources vote, so
            only classes 1..8 win, as the reference does).
        inference: sliding window and TTA overrides for the checkpoints (``--inference.scales``);
            None keeps the first checkpoint's.
        nodata: the reference's no-data rule (``--nodata.min_area 5000``, ``--nodata.apply false``).
        scaling: how the tiles' values become 8-bit amplitude (default ``uint8``: as OEM-SAR).
        runtime: where the checkpoints run (``--runtime.device cuda``; default ``auto``: OpenVINO,
            else ONNX Runtime on the CPU, as for ``map``).
        zip_name: name of the zip of all PNGs, inside ``output``.
        max_memory_gb: memory budget of the checkpoints' inference (default: the RAM available now).
        progress: show a progress bar over tiles.

    Returns:
        The submission folder.

    Raises:
        OutputRefusedError: ``output`` may not be replaced (an input, a folder holding one, a data root,
            a folder holding anything but an earlier submission), before any work.
        DataError: naming the file: an empty or missing SAR folder, a soft map missing for a tile or
            of another size or band count, an unreadable tile or checkpoint, values the scaling
            would misread.
        ValueError: no source at all, or bad weights.
    """
    checkpoints = [ckpt_path] if isinstance(ckpt_path, str) else ckpt_path or []
    check_name(zip_name, "zip name")
    check_outputs(
        "submit", [Output(output, "replaced_folder", "--output")], inputs=[sar_dir, *(soft_dirs or []), *checkpoints]
    )
    tiles = sorted(Path(sar_dir).glob("*.tif"))
    if not tiles:
        raise DataError(sar_dir, "no SAR tile (*.tif) to submit")
    folders = [soft_folder(Path(f)) for f in soft_dirs or []]
    predictor = None
    if ckpt_path:
        predictor = load_predictor(ckpt_path, inference, runtime)
    sources = len(folders) + (len(predictor.models) if predictor else 0)
    if sources == 0:
        raise ValueError("submit needs soft_dirs, ckpt_path or both")
    weights = ensemble.class_weights_for(sources, NUM_CLASSES)
    if predictor is not None:
        largest = max((raster_info(t) for t in tiles), key=lambda info: info.height * info.width)
        check_memory(predictor.inference, *largest.shape, NUM_CLASSES, sources, max_memory_gb, str(largest.path))
    for folder in folders:  # every prediction present before any work
        missing = [t.name for t in tiles if not (folder / t.name).is_file()]
        if missing:
            raise DataError(
                folder / missing[0], f"missing: no prediction for the SAR tile {Path(sar_dir) / missing[0]}"
            )

    with atomic_output_dir(output, "submit") as tmp:
        pngs = []
        for tile in tqdm(tiles, desc="submit", unit="tile", disable=not progress):
            sar, valid = read_sar(tile, scaling)
            label = _tile_label(tile, sar, folders, predictor, ensemble.model_weights, weights)
            label[~valid | nodata.mask(sar[0])] = 0
            pngs.append(write_png(tmp / f"{tile.stem}.png", label))
        write_zip(tmp / zip_name, pngs)
    return Path(output)


def _tile_label(
    tile: Path,
    sar: np.ndarray,
    folders: list[Path],
    predictor: TaskPredictor | None,
    model_weights: Sequence[float] | None,
    class_weights: Sequence[float] | None,
) -> np.ndarray:
    probs = [read_soft(folder / tile.name, sar.shape[1:], tile) for folder in folders]
    if predictor is not None:
        probs += predictor.probs(sar)
    return combine(probs, model_weights, class_weights).label
