"""Installing a labeller's pseudo-label set as the demo data's official labels."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from datamodules.output_safety import OutputRefusedError
from datamodules.rasters import read_raster, write_raster
from sar_demo.official_labels import NOISE_MODEL, install_official_labels, official_labels_marker

SET = "labeller-run"


def _labeller_set(root: Path) -> dict[str, np.ndarray]:
    """A stand-in labeller output: a distinct constant label per tile that has an optical image."""
    train = root / "OpenEarthMap-SAR" / "train"
    written = {}
    for i, rgb in enumerate(sorted((train / "rgb_images").glob("*.tif"))):
        label = np.full(read_raster(rgb).shape[-2:], 1 + i % 8, np.uint8)
        write_raster(train / "labels_pl" / SET / rgb.name, label)
        written[rgb.name] = label
    return written


@pytest.fixture
def data(tiny_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    return root


def test_install_replaces_the_labels_and_keeps_the_generators(data: Path) -> None:
    train = data / "OpenEarthMap-SAR" / "train"
    generated = {p.name: read_raster(p) for p in (train / "labels").glob("*.tif")}
    expected = _labeller_set(data)

    install_official_labels(str(data), SET, checkpoint="best.ckpt")

    installed = {p.name: read_raster(p)[0] for p in (train / "labels").glob("*.tif")}
    assert installed.keys() == expected.keys()  # the tile without optics has no official label now
    assert len(generated) == len(expected) + 1
    for name, label in expected.items():
        np.testing.assert_array_equal(installed[name], label)
    for name, label in generated.items():
        np.testing.assert_array_equal(read_raster(train / NOISE_MODEL / name), label)
    record = json.loads(official_labels_marker(data).read_text())
    assert record["from_set"] == SET and record["checkpoint"] == "best.ckpt"


def test_install_is_done_once(data: Path) -> None:
    _labeller_set(data)
    install_official_labels(str(data), SET)
    labels = data / "OpenEarthMap-SAR" / "train" / "labels"
    before = {p.name: p.stat().st_mtime_ns for p in labels.iterdir()}
    install_official_labels(str(data), "another-set-that-does-not-exist")
    assert {p.name: p.stat().st_mtime_ns for p in labels.iterdir()} == before


def test_install_finishes_after_an_interruption_between_the_renames(data: Path) -> None:
    train = data / "OpenEarthMap-SAR" / "train"
    expected = _labeller_set(data)
    os.rename(train / "labels", train / NOISE_MODEL)  # killed right after moving the old labels aside

    install_official_labels(str(data), SET)

    assert sorted(p.name for p in (train / "labels").glob("*.tif")) == sorted(expected)
    assert len(list((train / NOISE_MODEL).glob("*.tif"))) == len(expected) + 1


def test_an_incomplete_set_is_refused_and_nothing_changes(data: Path) -> None:
    train = data / "OpenEarthMap-SAR" / "train"
    expected = _labeller_set(data)
    first = sorted(expected)[0]
    (train / "labels_pl" / SET / first).unlink()
    before = {p.name: p.read_bytes() for p in (train / "labels").iterdir()}
    with pytest.raises(ValueError, match=f"lacks 1 of {len(expected)} tiles, e.g. {first}"):
        install_official_labels(str(data), SET)
    assert {p.name: p.read_bytes() for p in (train / "labels").iterdir()} == before
    assert not (train / NOISE_MODEL).exists() and not official_labels_marker(data).exists()


def test_real_data_is_never_relabelled(tmp_path: Path) -> None:
    (tmp_path / "OpenEarthMap-SAR" / "train" / "labels").mkdir(parents=True)
    with pytest.raises(OutputRefusedError, match="is not data this project generated"):
        install_official_labels(str(tmp_path), SET)
