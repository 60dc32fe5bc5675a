"""Raster I/O: georeferencing kept, atomic writes, and errors that name the file."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from datamodules.classes import rasterio_colormap
from datamodules.rasters import (
    DataError,
    atomic_output,
    raster_info,
    read_label,
    read_raster,
    write_label_like,
    write_png,
    write_raster,
)

ROTATED = Affine(0.28, 0.07, 336000.0, 0.07, -0.28, 3945000.0)


def test_write_keeps_rotated_transform_crs_and_colormap(tmp_path: Path) -> None:
    label = (np.arange(64 * 48) % 9).reshape(48, 64).astype(np.uint8)
    path = write_raster(tmp_path / "a.tif", label, crs="EPSG:32654", transform=ROTATED, colormap=True)
    with rasterio.open(path) as src:
        assert src.transform == ROTATED
        assert src.crs.to_epsg() == 32654
        assert src.colormap(1)[8] == rasterio_colormap()[8]
        np.testing.assert_array_equal(src.read(1), label)


def test_write_label_like_copies_reference_grid(tmp_path: Path) -> None:
    ref = write_raster(tmp_path / "ref.tif", np.zeros((1, 20, 30), np.uint8), crs="EPSG:32631", transform=ROTATED)
    out = write_label_like(tmp_path / "out.tif", np.ones((20, 30), np.uint8), raster_info(ref))
    info = raster_info(out)
    assert (info.transform, info.crs, info.shape) == (ROTATED, raster_info(ref).crs, (20, 30))
    with pytest.raises(ValueError, match="does not match"):
        write_label_like(tmp_path / "bad.tif", np.ones((21, 30), np.uint8), raster_info(ref))


def test_atomic_output_keeps_old_file_when_writer_fails(tmp_path: Path) -> None:
    target = write_raster(tmp_path / "map.tif", np.full((8, 8), 3, np.uint8))
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("crash while writing")
    assert read_label(target).max() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]


def test_png_export(tmp_path: Path) -> None:
    image = (np.arange(100).reshape(10, 10) % 9).astype(np.uint8)
    path = write_png(tmp_path / "tile.png", image)
    with rasterio.open(path) as src:
        assert src.driver == "PNG"
        np.testing.assert_array_equal(src.read(1), image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tile.png"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.tif: file does not exist"):
        read_raster(tmp_path / "nope.tif")


def test_unreadable_and_truncated_files_are_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tif"
    junk.write_text("not a tiff")
    with pytest.raises(DataError, match=r"junk\.tif: unreadable or truncated"):
        read_raster(junk)
    good = write_raster(tmp_path / "good.tif", np.random.default_rng(0).integers(0, 255, (3, 300, 300), np.uint8))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.tif: unreadable or truncated"):
        read_raster(cut)


def test_wrong_band_count_is_named(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "rgb.tif", np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"rgb\.tif: has 3 band\(s\), expected 1"):
        read_raster(path, bands=1)


def test_nan_and_inf_are_refused(tmp_path: Path) -> None:
    data = np.ones((1, 8, 8), np.float32)
    data[0, 2, 3] = np.nan
    data[0, 4, 4] = np.inf
    path = write_raster(tmp_path / "float.tif", data)
    with pytest.raises(DataError, match=r"float\.tif: contains 2 NaN or inf"):
        read_raster(path)


@pytest.mark.parametrize("bad", [9, 17, 254])
def test_label_values_outside_legend_are_refused(tmp_path: Path, bad: int) -> None:
    label = np.zeros((8, 8), np.uint8)
    label[1, 1] = bad
    label[2, 2] = 255  # padding is allowed
    path = write_raster(tmp_path / "lab.tif", label)
    with pytest.raises(DataError, match=rf"lab\.tif: label values \[{bad}\] outside 0\.\.8 and 255"):
        read_label(path)


def test_valid_label_reads_back(tmp_path: Path) -> None:
    label = np.array([[0, 8], [255, 4]], np.uint8)
    np.testing.assert_array_equal(read_label(write_raster(tmp_path / "ok.tif", label)), label)
