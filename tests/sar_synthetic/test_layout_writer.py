"""Tests of the synthetic data root: layout, names, georeferencing, determinism, markers, atomic writing."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from datamodules.output_safety import OutputRefusedError
from datamodules.rasters import raster_info, read_label, read_raster
from sar_synthetic import layout_writer
from sar_synthetic.layout_writer import demo_data_complete, generate_demo_data
from sar_synthetic.scene import generate_scene
from sar_synthetic.tiles import sar_content_scale, tile_rng
from tests.helpers.data import TINY as SHARED_TINY

TINY = replace(SHARED_TINY, seed=3, sar_train_tiles=4, sar_test_tiles=4, nodata_test_fraction=0.5)
OEM_NAMES = [f"{region}_{n}.tif" for region in ("aachen", "chiclayo") for n in (1, 2, 3)]
SAR = "OpenEarthMap-SAR"


def _expected_files() -> set[str]:
    """Every file the TINY config must produce, as paths relative to the root."""
    files = {"SYNTHETIC.json", "OpenEarthMap/train.txt", "OpenEarthMap/val.txt", "OpenEarthMap/test.txt"}
    for name in OEM_NAMES:
        region = name.rsplit("_", 1)[0]
        files |= {f"OpenEarthMap/{region}/images/{name}", f"OpenEarthMap/{region}/labels/{name}"}
    for i in range(1, 5):
        name = f"TrainArea_{i:03d}.tif"
        files |= {f"{SAR}/train/{d}/{name}" for d in ("sar_images", "labels", "labels_truth")}
        if i < 4:  # the last train tile has no RGB partner
            files |= {f"{SAR}/train/rgb_images/{name}", f"{SAR}/train/labels_optical_date/{name}"}
    for i in range(1, 3):
        files |= {f"{SAR}/val/{d}/ValArea_{i:03d}.tif" for d in ("sar_images", "rgb_images", "labels")}
    for i in range(1, 5):
        files |= {f"{SAR}/test/{d}/TestArea_{i:03d}.tif" for d in ("sar_images", "labels")}
    return files


def _relative_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _all_rasters(root: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(root)): read_raster(p) for p in sorted(root.rglob("*.tif"))}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_data(tmp_path_factory.mktemp("demo") / "data", TINY, progress=False)


def test_layout_and_file_names_are_exact(tiny: Path) -> None:
    assert _relative_files(tiny) == _expected_files()
    assert not list(tiny.parent.glob(".data.partial-*"))


def test_oem_split_lists_partition_the_tiles(tiny: Path) -> None:
    splits = {s: (tiny / "OpenEarthMap" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    listed = [name for names in splits.values() for name in names]
    assert sorted(listed) == sorted(OEM_NAMES)  # each tile in exactly one split
    assert [len(splits[s]) for s in ("train", "val", "test")] == [4, 1, 1]


def test_bands_dtypes_and_label_values(tiny: Path) -> None:
    for rel, data in _all_rasters(tiny).items():
        folder = Path(rel).parent.name
        assert data.dtype == np.uint8, rel
        expected_bands = 3 if folder in ("images", "rgb_images") else 1
        assert data.shape[0] == expected_bands, rel
        if folder.startswith("labels"):
            assert set(np.unique(data)) <= set(range(9)), rel
    sizes = {raster_info(p).shape for p in (tiny / "OpenEarthMap").rglob("images/*.tif")}
    assert sizes == {(64, 64), (48, 48)}  # a few OEM tiles are smaller, as in the real data


def test_sar_and_rgb_share_a_rotated_georeferenced_grid(tiny: Path) -> None:
    for split in ("train", "val"):
        for rgb in (tiny / SAR / split / "rgb_images").glob("*.tif"):
            sar, optical = raster_info(rgb.parent.parent / "sar_images" / rgb.name), raster_info(rgb)
            assert sar.crs is not None and sar.crs == optical.crs
            assert sar.transform == optical.transform
            assert sar.transform.b != 0 or sar.transform.d != 0, "transform must be rotated"
    assert raster_info(tiny / SAR / "train" / "labels" / "TrainArea_001.tif").crs is None
    oem = raster_info(tiny / "OpenEarthMap" / "aachen" / "images" / "aachen_1.tif")
    assert oem.crs is not None and oem.transform.b == 0 and oem.transform.d == 0


def test_same_seed_is_identical_and_another_seed_differs(tiny: Path, tmp_path: Path) -> None:
    again = _all_rasters(generate_demo_data(tmp_path / "again", TINY, progress=False))
    first = _all_rasters(tiny)
    assert again.keys() == first.keys()
    assert all(np.array_equal(first[k], again[k]) for k in first)
    other = _all_rasters(generate_demo_data(tmp_path / "other", replace(TINY, seed=4), progress=False))
    differing = [k for k in first if not np.array_equal(first[k], other[k])]
    assert len(differing) == len(first)


def test_label_noise_zero_copies_the_truth(tmp_path: Path) -> None:
    root = generate_demo_data(tmp_path / "clean", replace(TINY, label_noise=0.0), progress=False)
    for truth in (root / SAR / "train" / "labels_truth").glob("*.tif"):
        assert np.array_equal(read_label(truth), read_label(truth.parent.parent / "labels" / truth.name))


def test_noisy_train_labels_differ_from_the_truth(tiny: Path) -> None:
    agreements = []
    for truth in sorted((tiny / SAR / "train" / "labels_truth").glob("*.tif")):
        agreements.append(np.mean(read_label(truth) == read_label(truth.parent.parent / "labels" / truth.name)))
    assert 0.35 < np.mean(agreements) < 0.9


def test_domain_gap_knob_changes_the_generated_optical_tiles(tiny: Path, tmp_path: Path) -> None:
    no_gap = generate_demo_data(tmp_path / "no_gap", replace(TINY, domain_gap=0.0), progress=False)
    rgb = tiny / SAR / "val" / "rgb_images" / "ValArea_001.tif"
    with_gap = read_raster(rgb).astype(float)
    without = read_raster(no_gap / SAR / "val" / "rgb_images" / rgb.name).astype(float)
    assert np.abs(np.diff(with_gap, axis=2)).mean() < 0.7 * np.abs(np.diff(without, axis=2)).mean()
    # Without the gap the scene is drawn at the native scale, directly on the grid.
    native = generate_scene(tile_rng(TINY.seed, "val", 0, 0), TINY.tile_size)
    assert np.array_equal(read_label(no_gap / SAR / "val" / "labels" / rgb.name), native)
    assert not np.array_equal(read_label(rgb.parent.parent / "labels" / rgb.name), native)


def test_oem_sar_grids_have_the_configured_gsd_and_scale_the_scene(tiny: Path) -> None:
    for path in sorted((tiny / SAR).glob("*/sar_images/*.tif")):
        a, b, _, d, e, _ = raster_info(path).transform[:6]
        assert TINY.sar_gsd_range[0] <= np.hypot(a, d) <= TINY.sar_gsd_range[1], path
        assert np.hypot(b, e) == pytest.approx(np.hypot(a, d))
    for path in sorted((tiny / "OpenEarthMap").glob("*/images/*.tif")):
        assert TINY.oem_gsd_range[0] <= raster_info(path).transform.a <= TINY.oem_gsd_range[1], path
    assert sar_content_scale(replace(TINY, domain_gap=1.0), 0.15, 0.5) == pytest.approx(0.5 / 0.15)
    assert sar_content_scale(replace(TINY, domain_gap=0.5), 0.15, 0.5) == pytest.approx(1 + 0.5 * (0.5 / 0.15 - 1))
    assert sar_content_scale(replace(TINY, domain_gap=0.0), 0.15, 0.5) == 1.0


def test_optical_resolution_changes_only_the_oem_sar_rgb(tiny: Path, tmp_path: Path) -> None:
    other = generate_demo_data(tmp_path / "other", replace(TINY, optical_resolution_range=(0.5, 0.5)), progress=False)
    changed = 0
    for path in sorted(tiny.rglob("*.tif")):
        same = np.array_equal(read_raster(path), read_raster(other / path.relative_to(tiny)))
        if "rgb_images" in path.parts:
            changed += not same
        else:
            assert same, path  # OEM, SAR, labels and noisy labels keep their random streams
    assert changed == TINY.sar_train_tiles - 1 + TINY.sar_val_tiles


def test_a_dataset_written_before_the_later_fields_is_kept(tiny: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    generate_demo_data(old, TINY, progress=False)
    marker = json.loads((old / "SYNTHETIC.json").read_text())
    for later in ("optical_resolution_range", "oem_gsd_range", "sar_gsd_range"):
        del marker[later]
    (old / "SYNTHETIC.json").write_text(json.dumps(marker))
    assert demo_data_complete(old)
    with pytest.warns(UserWarning, match="keeping it"):
        assert generate_demo_data(old, TINY, progress=False) == old


def test_nodata_wedges_are_border_connected_zeros_with_label_zero(tiny: Path) -> None:
    wedges = 0
    for label_path in sorted((tiny / SAR / "test" / "labels").glob("*.tif")):
        label = read_label(label_path)
        sar = read_raster(label_path.parent.parent / "sar_images" / label_path.name)[0]
        components, count = ndimage.label(label == 0)
        for k in range(1, count + 1):
            region = components == k
            if region.mean() < 0.04:
                continue  # a small unknown patch of the scene, not no-data
            wedges += 1
            assert (sar[region] == 0).all()
            corners = region[[0, 0, -1, -1], [0, -1, 0, -1]]
            assert corners.any(), "a wedge is cut off at a tile corner"
            assert region.mean() < 0.35
    assert wedges == 2  # round(0.5 * 4 test tiles)


def test_train_sar_has_many_exact_zeros_inside_valid_areas(tiny: Path) -> None:
    for path in (tiny / SAR / "train" / "sar_images").glob("*.tif"):
        assert 0.05 < np.mean(read_raster(path) == 0) < 0.35, path.name


def test_last_train_tile_lacks_its_rgb_partner(tiny: Path) -> None:
    train = tiny / SAR / "train"
    assert (train / "sar_images" / "TrainArea_004.tif").exists()
    assert not (train / "rgb_images" / "TrainArea_004.tif").exists()
    assert (train / "rgb_images" / "TrainArea_003.tif").exists()


def test_all_eight_classes_appear(tiny: Path) -> None:
    labels = [read_label(p) for p in tiny.rglob("labels*/*.tif")]
    present = set(np.unique(np.concatenate([x.ravel() for x in labels])))
    assert set(range(1, 9)) <= present


def test_marker_holds_the_config_and_marks_completion(tiny: Path, tmp_path: Path) -> None:
    assert json.loads((tiny / "SYNTHETIC.json").read_text()) == json.loads(json.dumps(asdict(TINY)))
    assert demo_data_complete(tiny)
    unmarked = tmp_path / "unmarked"
    (unmarked / "OpenEarthMap").mkdir(parents=True)
    assert not demo_data_complete(unmarked)
    assert not demo_data_complete(tmp_path / "missing")


def test_complete_dataset_is_reused_without_work(tiny: Path) -> None:
    probe = tiny / SAR / "val" / "labels" / "ValArea_001.tif"
    before = probe.stat().st_mtime_ns
    assert generate_demo_data(tiny, TINY, progress=False) == tiny
    assert probe.stat().st_mtime_ns == before


def test_existing_foreign_folder_raises_and_is_left_untouched(tmp_path: Path) -> None:
    root = tmp_path / "user_data"
    root.mkdir()
    (root / "notes.txt").write_text("precious")
    with pytest.raises(OutputRefusedError, match="user_data"):
        generate_demo_data(root, TINY, progress=False)
    assert [p.name for p in root.iterdir()] == ["notes.txt"]
    assert (root / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user_data"]


def test_an_empty_existing_folder_is_filled(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    generate_demo_data(root, TINY, progress=False)
    assert demo_data_complete(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_failed_generation_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(layout_writer, "_write_sar_tile", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_demo_data(tmp_path / "data", TINY, progress=False)
    assert list(tmp_path.iterdir()) == []
