"""Selection across pseudo-label sets: agreement and soft ensemble, written as a new set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from datamodules.rasters import DataError, raster_info, read_label, write_raster
from sar_inference.selection import select_pseudo_labels

TRAIN = Path("OpenEarthMap-SAR/train")
GRID = {"crs": "EPSG:32654", "transform": Affine(0.3, 0.05, 4e5, 0.05, -0.3, 3.9e6)}


def _write_set(root: Path, name: str, labels: dict[str, np.ndarray], soft: dict[str, np.ndarray]) -> None:
    for tile, label in labels.items():
        write_raster(root / TRAIN / "labels_pl" / name / tile, label, colormap=True, **GRID)
    for tile, probs in soft.items():
        write_raster(root / TRAIN / "labels_pl_soft" / name / tile, probs, **GRID)


def test_agreement_keeps_equal_labels_and_zeroes_the_rest(tmp_path: Path) -> None:
    a = np.array([[1, 2], [3, 4]], np.uint8)
    b = np.array([[1, 5], [3, 8]], np.uint8)
    _write_set(tmp_path, "a", {"T_001.tif": a}, {})
    _write_set(tmp_path, "b", {"T_001.tif": b}, {})
    out = select_pseudo_labels(str(tmp_path), ["a", "b"], "ab", "agreement", progress=False)
    np.testing.assert_array_equal(read_label(out / "T_001.tif"), [[1, 0], [3, 0]])
    assert raster_info(out / "T_001.tif").transform == GRID["transform"]


def test_soft_ensemble_is_the_argmax_of_the_summed_soft_maps(tmp_path: Path) -> None:
    soft_a = np.zeros((9, 1, 2), np.uint8)
    soft_b = np.zeros((9, 1, 2), np.uint8)
    soft_a[2, 0, 0], soft_a[5, 0, 0] = 200, 55  # a says 2 at pixel 0
    soft_b[2, 0, 0], soft_b[5, 0, 0] = 20, 235  # b says 5; sums: 2 -> 220, 5 -> 290
    soft_a[7, 0, 1], soft_b[7, 0, 1] = 255, 255  # pixel 1: both say 7 (a uint8 sum would overflow to 254)
    soft_b[1, 0, 1] = 254
    hard = {"T_001.tif": np.zeros((1, 2), np.uint8)}
    _write_set(tmp_path, "a", hard, {"T_001.tif": soft_a})
    _write_set(tmp_path, "b", hard, {"T_001.tif": soft_b})
    out = select_pseudo_labels(str(tmp_path), ["a", "b"], "ens", "soft_ensemble", progress=False)
    np.testing.assert_array_equal(read_label(out / "T_001.tif"), [[5, 7]])


def test_selection_resumes_and_reports_missing_tiles(tmp_path: Path) -> None:
    one = np.ones((2, 2), np.uint8)
    _write_set(tmp_path, "a", {"T_001.tif": one, "T_002.tif": one}, {})
    _write_set(tmp_path, "b", {"T_001.tif": one}, {})
    with pytest.warns(UserWarning, match="T_002.tif"):
        out = select_pseudo_labels(str(tmp_path), ["a", "b"], "ab", progress=False)
    stamp = (out / "T_001.tif").stat().st_mtime_ns
    with pytest.warns(UserWarning):
        select_pseudo_labels(str(tmp_path), ["a", "b"], "ab", progress=False)
    assert (out / "T_001.tif").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in out.iterdir()) == [".sar-landcover.json", "T_001.tif"]  # the set is marked as ours


def test_bad_selections_are_refused(tmp_path: Path) -> None:
    _write_set(tmp_path, "a", {"T_001.tif": np.ones((2, 2), np.uint8)}, {})
    _write_set(tmp_path, "b", {"T_001.tif": np.ones((3, 2), np.uint8)}, {})
    with pytest.raises(ValueError, match="exactly two sets"):
        select_pseudo_labels(str(tmp_path), ["a"], "x", "agreement", progress=False)
    with pytest.raises(ValueError, match="must be new"):
        select_pseudo_labels(str(tmp_path), ["a", "b"], "a", progress=False)
    with pytest.raises(DataError, match=r"labels_pl/nope: pseudo-label folder does not exist"):
        select_pseudo_labels(str(tmp_path), ["a", "nope"], "x", progress=False)
    with pytest.raises(DataError, match=r"b/T_001\.tif: shape \(3, 2\) differs"):
        select_pseudo_labels(str(tmp_path), ["a", "b"], "x", progress=False)


def test_selection_command(tmp_path: Path) -> None:
    from tests.helpers.cli import REPO, run_cli

    _write_set(tmp_path, "a", {"T_001.tif": np.full((2, 2), 4, np.uint8)}, {})
    _write_set(tmp_path, "b", {"T_001.tif": np.full((2, 2), 4, np.uint8)}, {})
    result = run_cli(
        "select-pseudo-labels", "--root", str(tmp_path), "--sets", "[a,b]", "--output", "ab", "--progress", "false",
        cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_label(tmp_path / TRAIN / "labels_pl/ab/T_001.tif").tolist() == [[4, 4], [4, 4]]
