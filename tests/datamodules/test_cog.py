"""Cloud-Optimized GeoTIFFs written block by block: per-band overview resampling, names, nodata, layout, atomicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from datamodules.classes import CLASS_NAMES, rasterio_colormap
from datamodules.cog import BandSpec, class_band, open_cog_writer, overview_factors, probability_bands, write_cog
from datamodules.qgis_style import qgis_style_xml
from tests.helpers.gdal_tools import gdalinfo, needs_gdalinfo, validate_cog

ROTATED = {"crs": "EPSG:32654", "transform": Affine(0.3, 0.05, 4e5, 0.05, -0.3, 3.9e6)}


def two_by_two_classes(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Classes in 2x2 cells: three pixels of one class and the top-left one of another, so mode != nearest."""
    rng = np.random.default_rng(seed)
    majority = rng.integers(1, 9, (height // 2, width // 2))
    minority = majority % 8 + 1
    cells = np.repeat(np.repeat(majority, 2, 0), 2, 1)
    cells[::2, ::2] = minority
    return cells.astype(np.uint8)


def write_map(path: Path, classes: np.ndarray, confidence: np.ndarray, block: int = 128) -> None:
    """A class + confidence COG written in blocks, with every overview level (from factor 2)."""
    bands = [class_band(), BandSpec("confidence", "average")]
    height, width = classes.shape
    where = dict(nodata=0, first_overview=2, **ROTATED)
    with open_cog_writer(path, height=height, width=width, dtype="uint8", bands=bands, **where) as dst:
        for top in range(0, height, block):
            for left in range(0, width, block):
                window = Window(left, top, min(block, width - left), min(block, height - top))
                rows, cols = window.toslices()
                dst.write(classes[rows, cols], 1, window=window)
                dst.write(confidence[rows, cols], 2, window=window)


def test_overview_factors_stop_when_the_smallest_fits_one_tile() -> None:
    assert overview_factors(256, 200) == []
    assert overview_factors(520, 600, first=2) == [2, 4]  # 300 x 260, then 150 x 130 in one tile
    assert overview_factors(8192, 8192, first=2) == [2, 4, 8, 16, 32]  # 256^2 last
    assert overview_factors(8192, 8192) == [4, 8, 16, 32]  # the default starts at a quarter
    assert overview_factors(520, 600) == [4] and overview_factors(500, 500) == []  # 250^2 would be one tile
    with pytest.raises(ValueError, match="power of two"):
        overview_factors(8192, 8192, first=3)


def test_each_band_gets_its_own_overview_resampling_and_every_name(tmp_path: Path) -> None:
    classes = two_by_two_classes(520, 600)
    confidence = np.random.default_rng(1).integers(1, 256, classes.shape).astype(np.uint8)
    classes[:100, :64], confidence[:100, :64] = 0, 0  # no data
    write_map(tmp_path / "map.tif", classes, confidence)
    with rasterio.open(tmp_path / "map.tif") as src:
        np.testing.assert_array_equal(src.read(1), classes)  # written block by block, exactly
        np.testing.assert_array_equal(src.read(2), confidence)
        assert src.crs == rasterio.crs.CRS.from_epsg(32654) and src.transform == ROTATED["transform"]
        assert src.overviews(1) == src.overviews(2) == [2, 4] and src.nodata == 0
        assert src.descriptions == ("land-cover class", "confidence")
        assert src.colormap(1)[8] == rasterio_colormap()[8]
    with rasterio.open(tmp_path / "map.tif", overview_level=0) as level:
        overview = level.read()
    # classes: the majority of each 2x2 cell (mode), not its top-left pixel (nearest)
    majority = classes[1::2, 1::2]
    np.testing.assert_array_equal(overview[0, 50:, 32:], majority[50:, 32:])
    assert (overview[0, 50:, 32:] != classes[100::2, 64::2]).all()
    # confidence: the mean of each 2x2 cell, to the rounding
    mean = confidence.reshape(260, 2, 300, 2).astype(float).mean(axis=(1, 3))
    assert np.abs(overview[1, 50:, 32:] - mean[50:, 32:]).max() <= 1
    # no data stays no data, and is left out of the means
    assert (overview[:, :50, :32] == 0).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif", "map.tif.aux.xml"]  # no part left behind


def test_soft_maps_name_each_class_band_and_average_their_overviews(tmp_path: Path) -> None:
    soft = np.random.default_rng(2).integers(0, 256, (9, 600, 560)).astype(np.uint8)
    write_cog(tmp_path / "soft.tif", soft, probability_bands(), **ROTATED)
    with rasterio.open(tmp_path / "soft.tif") as src:
        np.testing.assert_array_equal(src.read(), soft)
        assert src.descriptions[8] == "p(Building), floor(255 p)" and src.nodata is None
        assert src.overviews(9) == [4]  # the default overviews start at a quarter


def test_a_failure_while_writing_keeps_the_previous_file_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "map.tif").write_bytes(b"previous map")
    writer = open_cog_writer(tmp_path / "map.tif", height=64, width=64, dtype="uint8", bands=[class_band()])
    with pytest.raises(RuntimeError, match="crash"), writer as dst:
        dst.write(np.ones((64, 64), np.uint8), 1)
        raise RuntimeError("crash")
    assert (tmp_path / "map.tif").read_bytes() == b"previous map"
    assert [p.name for p in tmp_path.iterdir()] == ["map.tif"]


def test_qgis_style_lists_each_mapped_class_with_its_colour() -> None:
    xml = qgis_style_xml()
    assert 'value="8" color="#DE1F07" alpha="255" label="Building"' in xml
    assert 'label="Background"' not in xml  # class 0 is the nodata value: transparent, not a legend entry
    assert xml.count("<paletteEntry") == len(CLASS_NAMES) - 1


@needs_gdalinfo
def test_gdal_reads_a_valid_cog_with_categories_overviews_and_nodata(tmp_path: Path) -> None:
    classes = two_by_two_classes(520, 600)
    classes[:100, :64] = 0
    write_map(tmp_path / "map.tif", classes, np.full(classes.shape, 200, np.uint8))
    info = gdalinfo(tmp_path / "map.tif")
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    band, confidence = info["bands"]
    assert band["categories"] == list(CLASS_NAMES) and band["categories"][8] == "Building"
    assert band["description"] == "land-cover class" and band["colorInterpretation"] == "Palette"
    assert band["noDataValue"] == 0 and confidence["noDataValue"] == 0
    sizes = [[300, 260], [150, 130]]
    assert [o["size"] for o in band["overviews"]] == sizes == [o["size"] for o in confidence["overviews"]]
    assert band["block"] == [256, 256]
    check = validate_cog(tmp_path / "map.tif")
    assert check.returncode == 0 and "is a valid cloud optimized GeoTIFF" in check.stdout, check.stdout + check.stderr
