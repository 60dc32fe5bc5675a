"""The Python API: a checkpoint loaded once maps a GeoTIFF and predicts numpy arrays, as the command line does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.rasters import read_raster, write_raster
from sar_inference import LandCoverMapper
from sar_inference.checkpoints import load_model
from sar_inference.engine import probs_to_label
from sar_inference.runtimes import RuntimeSettings
from sar_inference.scene_mapper import map_scene
from sar_studies.checkpoints import sar_checkpoint


def test_three_lines_map_a_geotiff_and_predict_an_array(tmp_path: Path) -> None:
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    sar = np.random.default_rng(5).integers(0, 256, (90, 110), dtype=np.uint8)
    write_raster(tmp_path / "scene.tif", sar, crs="EPSG:32654")

    mapper = LandCoverMapper(ckpt, runtime="torch")
    mapper.map(tmp_path / "scene.tif", tmp_path / "api_map.tif", confidence=True)
    labels = mapper.predict(sar)

    expected = probs_to_label(load_model(ckpt).probs(sar[None])).numpy()
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_allclose(mapper.probabilities(sar).sum(axis=0), 1.0, atol=1e-5)
    torch_runtime = RuntimeSettings(runtime="torch")
    map_scene(str(ckpt), str(tmp_path / "scene.tif"), str(tmp_path / "cli_map.tif"), runtime=torch_runtime,
              confidence=True, progress=False)  # fmt: skip
    np.testing.assert_array_equal(read_raster(tmp_path / "api_map.tif"), read_raster(tmp_path / "cli_map.tif"))
    np.testing.assert_array_equal(read_raster(tmp_path / "api_map.tif")[0], labels)


def test_an_array_that_is_not_8_bit_sar_is_refused_with_what_it_holds(tmp_path: Path) -> None:
    mapper = LandCoverMapper(sar_checkpoint(tmp_path / "sar.ckpt"), runtime="torch")
    with pytest.raises(ValueError, match="SAR array holds float32; the models take 8-bit amplitude"):
        mapper.predict(np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match=r"must be \(H, W\) or \(1, H, W\), got shape \(3, 32, 32\)"):
        mapper.predict(np.zeros((3, 32, 32), np.uint8))
