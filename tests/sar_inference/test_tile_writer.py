"""``predict``'s outputs as GDAL reads them: a label COG with class names and a 9-band soft COG with named bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datamodules.classes import CLASS_NAMES
from datamodules.rasters import read_raster, write_raster
from sar_inference.engine import soft_to_uint8
from sar_inference.tile_writer import write_tile_prediction
from tests.helpers.gdal_tools import gdalinfo, needs_gdalinfo, validate_cog


@needs_gdalinfo
def test_label_and_soft_maps_are_valid_cogs_with_named_classes_and_bands(tmp_path: Path) -> None:
    write_raster(tmp_path / "tile.tif", np.zeros((600, 520), np.uint8), crs="EPSG:32654")  # one overview, at 1/4
    probs = torch.rand(9, 600, 520, generator=torch.Generator().manual_seed(0)).softmax(dim=0)
    (tmp_path / "labels").mkdir()
    (tmp_path / "soft").mkdir()
    write_tile_prediction(probs, "tile.tif", tmp_path / "tile.tif", tmp_path / "labels", tmp_path / "soft")
    label, soft = gdalinfo(tmp_path / "labels" / "tile.tif"), gdalinfo(tmp_path / "soft" / "tile.tif")
    for info in (label, soft):
        assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
        assert all(band["overviews"] for band in info["bands"])
    assert label["bands"][0]["categories"] == list(CLASS_NAMES)
    assert [band["description"] for band in soft["bands"]] == [f"p({name}), floor(255 p)" for name in CLASS_NAMES]
    for path in (tmp_path / "labels" / "tile.tif", tmp_path / "soft" / "tile.tif"):
        check = validate_cog(path)
        assert check.returncode == 0 and "is a valid cloud optimized GeoTIFF" in check.stdout, check.stdout
    np.testing.assert_array_equal(read_raster(tmp_path / "soft" / "tile.tif"), soft_to_uint8(probs).numpy())
    np.testing.assert_array_equal(read_raster(tmp_path / "labels" / "tile.tif")[0], probs.argmax(dim=0).numpy())
