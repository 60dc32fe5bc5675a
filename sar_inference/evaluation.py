"""``python cli.py evaluate``: the official score of a folder of label maps against reference labels.

mIoU over classes 1..8 with background pixels counted (a 0-labelled pixel predicted as k is a false
positive of k), per-class IoU beside it, from one confusion matrix summed over every tile.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from datamodules.classes import NUM_CLASSES
from datamodules.output_safety import Output, check_outputs, record_file
from datamodules.rasters import DataError, atomic_output, read_label, read_raster
from lightning_modules.metrics import LandCoverIoU, format_iou_table

PREDICTION_SUFFIXES = (".png", ".tif", ".tiff")
"""Prediction files are found by the reference label's base name with one of these endings."""


def find_prediction(folder: Path, reference: Path) -> Path:
    """The prediction of ``reference`` in ``folder`` (same base name, PNG or GeoTIFF)."""
    for suffix in PREDICTION_SUFFIXES:
        candidate = folder / f"{reference.stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise DataError(folder / f"{reference.stem}.png", f"missing: no prediction (.png/.tif) for the label {reference}")


def read_prediction(path: Path, shape: tuple[int, int], reference: Path) -> np.ndarray:
    """Band 1 of a prediction (a map's confidence band is ignored), checked for size and class values."""
    prediction = read_raster(path)[0]
    if prediction.shape != shape:
        size = f"{prediction.shape[1]}x{prediction.shape[0]}"
        raise DataError(path, f"size {size} differs from the label {reference} ({shape[1]}x{shape[0]})")
    bad = np.unique(prediction[(prediction < 0) | (prediction >= NUM_CLASSES)])
    if bad.size:
        raise DataError(path, f"prediction values {bad[:10].tolist()} outside 0..{NUM_CLASSES - 1}")
    return prediction.astype(np.int64)


def _as_json(scores: dict[str, torch.Tensor], tiles: int, predictions: str, labels: str) -> dict[str, Any]:
    def number(value: torch.Tensor) -> float | None:
        return None if math.isnan(float(value)) else float(value)  # JSON has no NaN

    per_class = {k.split("/", 1)[1]: number(v) for k, v in scores.items() if k != "mIoU"}
    return {
        "mIoU": number(scores["mIoU"]),
        "IoU": per_class,
        "tiles": tiles,
        "predictions": predictions,
        "labels": labels,
    }


def evaluate(
    predictions: str, labels: str, output: str | None = None, progress: bool = True, only_predicted: bool = False
) -> dict[str, Any]:
    """Score every reference label in ``labels`` against its prediction in ``predictions``; print a table.

    Args:
        predictions: folder of label maps (PNG or GeoTIFF, values 0..8), named like the labels.
        labels: folder of reference labels (``*.tif`` or ``*.png``, 0..8, 255 = not scored).
        output: also write the scores to this JSON file (atomically).
        progress: show a progress bar over tiles.
        only_predicted: score only the labels that have a prediction instead of failing on the
            others (a pseudo-label set lacks the tiles that have no RGB partner).

    Returns:
        ``{"mIoU": ..., "IoU": {class: ...}, "tiles": n, ...}``; an IoU is None where the class is
        absent from both prediction and reference.

    Raises:
        OutputRefusedError: ``output`` may not be written (an input, inside an input folder, a file this
            project did not write), before any work.
        DataError: naming the file: no labels, a missing prediction, sizes that differ, values
            outside the classes.
    """
    if output:
        check_outputs("evaluate", [Output(output, "file", "--output")], inputs=[predictions, labels])
    references = sorted(p for p in Path(labels).glob("*") if p.suffix.lower() in PREDICTION_SUFFIXES)
    if only_predicted:
        predicted = {p.stem for p in Path(predictions).glob("*") if p.suffix.lower() in PREDICTION_SUFFIXES}
        references = [p for p in references if p.stem in predicted]
    if not references:
        raise DataError(labels, "no reference label (.tif/.png) to score")
    metric = LandCoverIoU()
    for reference in tqdm(references, desc="evaluate", unit="tile", disable=not progress):
        target = read_label(reference)
        prediction = read_prediction(find_prediction(Path(predictions), reference), target.shape, reference)
        metric.update(torch.from_numpy(prediction)[None], torch.from_numpy(target.astype(np.int64))[None])
    scores = metric.compute()
    print(format_iou_table(scores, f"{predictions} vs {labels} ({len(references)} tiles)"))
    result = _as_json(scores, len(references), predictions, labels)
    if output:
        with atomic_output(output) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
        record_file(output, "evaluate")
    return result
