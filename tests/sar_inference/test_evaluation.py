"""``evaluate``: the official mIoU of a folder of predictions, against a hand computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.rasters import DataError, write_png, write_raster
from sar_inference.evaluation import evaluate
from sar_landcover.commands import main as cli_main


def _write_pair(root: Path, stem: str, reference: np.ndarray, prediction: np.ndarray, png: bool = True) -> None:
    write_raster(root / "labels" / f"{stem}.tif", reference.astype(np.uint8))
    if png:
        write_png(root / "pred" / f"{stem}.png", prediction.astype(np.uint8))
    else:  # a map from `map --confidence true`: band 2 is not a label
        bands = np.stack([prediction, np.full_like(prediction, 99)]).astype(np.uint8)
        write_raster(root / "pred" / f"{stem}.tif", bands)


def test_scores_match_a_hand_computation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Tile A: reference [1 1 2 0], prediction [1 2 2 2]; tile B (GeoTIFF): reference [2 255 1 1], prediction [2 1 1 0].
    _write_pair(tmp_path, "A", np.array([[1, 1, 2, 0]]), np.array([[1, 2, 2, 2]]))
    _write_pair(tmp_path, "B", np.array([[2, 255, 1, 1]]), np.array([[2, 1, 1, 0]]), png=False)
    # Summed (255 left out): class 1: TP 2 (A0, B2), FP 0, FN 2 (A1, B3) -> 2/4.
    # Class 2: TP 2 (A2, B0), FP 2 (A1 labelled 1, A3 labelled 0: background is counted), FN 0 -> 2/4.
    # Classes 3..8 never occur: no union, left out of the mean. mIoU = (0.5 + 0.5) / 2.
    cli_main(
        ["evaluate", "--predictions", str(tmp_path / "pred"), "--labels", str(tmp_path / "labels"),
         "--output", str(tmp_path / "scores.json"), "--progress", "false"]
    )  # fmt: skip
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["mIoU"] == pytest.approx(0.5) and scores["tiles"] == 2
    assert scores["IoU"]["Bareland"] == pytest.approx(0.5) and scores["IoU"]["Rangeland"] == pytest.approx(0.5)
    assert scores["IoU"]["Building"] is None
    printed = capsys.readouterr().out
    assert "mIoU 0.5000" in printed and "Rangeland" in printed


def test_missing_or_misfit_predictions_name_the_file(tmp_path: Path) -> None:
    _write_pair(tmp_path, "A", np.ones((4, 4)), np.ones((4, 4)))
    write_raster(tmp_path / "labels/B.tif", np.ones((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"pred/B\.png: missing: no prediction"):
        evaluate(str(tmp_path / "pred"), str(tmp_path / "labels"), progress=False)
    write_png(tmp_path / "pred/B.png", np.ones((4, 5), np.uint8))
    with pytest.raises(DataError, match=r"pred/B\.png: size 5x4 differs from the label"):
        evaluate(str(tmp_path / "pred"), str(tmp_path / "labels"), progress=False)
    write_png(tmp_path / "pred/B.png", np.full((4, 4), 12, np.uint8))
    with pytest.raises(DataError, match=r"pred/B\.png: prediction values \[12\] outside 0..8"):
        evaluate(str(tmp_path / "pred"), str(tmp_path / "labels"), output=str(tmp_path / "s.json"), progress=False)
    assert not (tmp_path / "s.json").exists()
