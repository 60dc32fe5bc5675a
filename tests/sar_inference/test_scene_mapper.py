"""Maps of whole scenes, block by block: exactness of the blocks, georeferencing, no-data, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from torch import nn

from datamodules.classes import rasterio_colormap
from datamodules.nodata import NoDataRule, OverviewNoData
from datamodules.output_safety import OutputRefusedError
from datamodules.rasters import DataError, read_raster, write_raster
from datamodules.sar_scaling import SARScaling, ScaledSAR
from lightning_modules.input_transform import InputTransform
from lightning_modules.networks import NetworkConfig
from sar_inference.checkpoints import CheckpointRecord, LoadedModel
from sar_inference.engine import probs_to_label, soft_to_uint8, tta_probs
from sar_inference.predictor import TaskPredictor
from sar_inference.scene_mapper import map_scene, scene_blocks, write_scene_map
from sar_inference.settings import InferenceConfig, InferenceOverrides
from sar_landcover.commands import main as cli_main
from sar_studies.checkpoints import sar_checkpoint
from tests.helpers.gdal_tools import gdalinfo, needs_gdalinfo, validate_cog
from tests.helpers.real_sample import UMBRA_CROP

ROTATED = {"crs": "EPSG:32654", "transform": Affine(0.3, 0.05, 4e5, 0.05, -0.3, 3.9e6)}


def conv1x1_task(seed: int = 0, bias_class: int | None = None) -> LoadedModel:
    """A translation-equivariant model: a 1x1 convolution, so any windowing gives the same probabilities."""
    torch.manual_seed(seed)
    network = nn.Conv2d(1, 9, kernel_size=1)
    if bias_class is not None:
        with torch.no_grad():
            network.weight.zero_()
            network.bias.zero_()
            network.bias[bias_class] = 5.0
    record = CheckpointRecord("tests.conv1x1", "sar", NetworkConfig(), InputTransform(), InferenceConfig())
    return LoadedModel(Path("conv1x1"), record, network.eval())


def random_scene(path: Path, height: int, width: int, seed: int = 0) -> np.ndarray:
    sar = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    write_raster(path, sar, **ROTATED)
    return sar


def test_blocks_tile_the_scene_once_and_read_their_halo() -> None:
    covered = np.zeros((150, 170), int)
    for part in scene_blocks(150, 170, block=64, halo=8):
        rows, cols = part.core.toslices()
        covered[rows, cols] += 1
        assert part.region.row_off == max(0, part.core.row_off - 8)
        assert part.region.row_off + part.region.height == min(150, part.core.row_off + part.core.height + 8)
        inner_rows, inner_cols = part.crop
        assert inner_rows.stop - inner_rows.start == part.core.height
        assert inner_cols.stop - inner_cols.start == part.core.width
    assert (covered == 1).all()


@pytest.mark.parametrize("halo", [0, 8])
def test_blockwise_map_equals_the_whole_image_prediction(tmp_path: Path, halo: int) -> None:
    sar = random_scene(tmp_path / "scene.tif", 150, 170)  # not a multiple of the block or the window
    loaded = conv1x1_task()
    cfg = InferenceConfig(window=32, stride=16, batch_size=64, flips=("none", "h"))
    write_scene_map(
        ScaledSAR(tmp_path / "scene.tif", SARScaling()), tmp_path / "map.tif", TaskPredictor([loaded], cfg),
        block=64, halo=halo, confidence=True, progress=False,
    )  # fmt: skip
    image = loaded.normalise(torch.from_numpy(sar)[None])
    probs = tta_probs(loaded.forward, image, 9, window=32, stride=16, batch_size=64, flips=("none", "h"))
    written = read_raster(tmp_path / "map.tif")
    np.testing.assert_array_equal(written[0], probs_to_label(probs).numpy())
    confidence = soft_to_uint8(probs.max(dim=0).values).numpy().astype(int)
    assert np.abs(written[1].astype(int) - confidence).max() <= 1  # floor() of sums in another order
    assert (written[1] == confidence).mean() > 0.99


def test_map_of_the_umbra_sample_keeps_its_georeferencing_exactly(tmp_path: Path) -> None:
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    out, preview = tmp_path / "umbra_map.tif", tmp_path / "umbra.png"
    # The whole command line, in this process. Blocks of 512 make 2 x 2 blocks of the 600 x 520 crop, the
    # second row and column partial; scale 1/8 makes each block one 64-pixel window.
    cli_main(
        ["map", "--ckpt_path", str(ckpt), "--input", str(UMBRA_CROP), "--output", str(out), "--inference.window",
         "64", "--inference.stride", "64", "--inference.scales", "[0.125]", "--block", "512", "--confidence", "true",
         "--preview", str(preview), "--preview_size", "200", "--progress", "false"]
    )  # fmt: skip
    with rasterio.open(UMBRA_CROP) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform  # exact, rotation included
        assert src.transform.b != 0  # the sample's transform is rotated
        assert (dst.width, dst.height, dst.count, dst.dtypes) == (600, 520, 2, ("uint8", "uint8"))
        assert dst.profile["tiled"] and dst.block_shapes[0] == (256, 256) and dst.compression.value == "DEFLATE"
        assert dst.colormap(1)[8] == rasterio_colormap()[8]
        assert dst.read(1).max() <= 8
    with rasterio.open(preview) as png:
        # two panels of 200 x 173 (the longer side is the width), a gap and the legend strip below
        assert png.width == 2 * 200 + 8 and png.height > round(200 * 520 / 600)
    # What the map wrote, recorded (so a re-run may replace it all), and nothing else: no partial file.
    names = [
        ".sar-landcover-files.json",
        "sar.ckpt",
        "umbra.png",
        "umbra_map.qml",
        "umbra_map.tif",
        "umbra_map.tif.aux.xml",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    recorded = json.loads((tmp_path / ".sar-landcover-files.json").read_text())["files"]
    assert sorted(recorded) == ["umbra.png", "umbra_map.qml", "umbra_map.tif", "umbra_map.tif.aux.xml"]


def test_nodata_region_of_the_scene_is_set_to_background(tmp_path: Path) -> None:
    sar = np.random.default_rng(1).integers(1, 256, (96, 96), dtype=np.uint8)
    sar[:40, :30] = 0  # a border-connected no-data corner
    sar[60, 60] = sar[70, 20] = 0  # scattered interior zeros stay predicted
    write_raster(tmp_path / "scene.tif", sar, **ROTATED)
    predictor = TaskPredictor([conv1x1_task(bias_class=3)], InferenceConfig(window=32, stride=16))
    masker = OverviewNoData(sar, sar.shape, NoDataRule(min_area=100))
    scene = ScaledSAR(tmp_path / "scene.tif", SARScaling())
    write_scene_map(scene, tmp_path / "map.tif", predictor, block=32, halo=4, masker=masker)
    label = read_raster(tmp_path / "map.tif")[0]
    assert (label[:40, :30] == 0).all()
    assert (label[sar != 0] == 3).all() and label[60, 60] == 3 and label[70, 20] == 3


def test_nodata_found_on_a_reduced_overview_covers_the_full_resolution_region() -> None:
    sar = np.random.default_rng(2).integers(1, 256, (400, 400), dtype=np.uint8)
    sar[:200, :120] = 0
    masker = OverviewNoData(sar[::4, ::4], sar.shape, NoDataRule(min_area=2000))  # a 100 x 100 nearest overview
    mask = np.concatenate([masker.block_mask(sar[top : top + 100], top, 0) for top in range(0, 400, 100)])
    assert mask[:200, :120].all() and not mask[200:].any() and not mask[:, 120:].any()
    assert not OverviewNoData(sar[::4, ::4], sar.shape, NoDataRule(min_area=2000, valid_fraction_threshold=0.5)).active


def test_a_failed_map_leaves_the_previous_output_and_no_partial_file(tmp_path: Path) -> None:
    values = np.random.default_rng(0).uniform(1, 100, (1, 64, 64)).astype(np.float32)
    write_raster(tmp_path / "scene.tif", values, **ROTATED)
    scene = ScaledSAR(tmp_path / "scene.tif", SARScaling(source="amplitude"))
    values[0, 50, 50] = np.nan  # the scene changes under the run: its last block becomes unreadable
    write_raster(tmp_path / "scene.tif", values, **ROTATED)
    (tmp_path / "map.tif").write_bytes(b"previous map")
    predictor = TaskPredictor([conv1x1_task()], InferenceConfig(window=16, stride=16))
    with pytest.raises(DataError, match=r"scene\.tif: contains 1 NaN or inf"):
        write_scene_map(scene, tmp_path / "map.tif", predictor, block=32, halo=0, progress=False)
    assert (tmp_path / "map.tif").read_bytes() == b"previous map"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif", "scene.tif"]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 truncated")
    write_raster(tmp_path / "rgb.tif", np.zeros((3, 64, 64), np.uint8))
    random_scene(tmp_path / "scene.tif", 64, 64)
    common = {"ckpt_path": str(ckpt), "output": str(tmp_path / "map.tif"), "progress": False}
    with pytest.raises(DataError, match=r"broken\.tif: unreadable"):
        map_scene(input=str(tmp_path / "broken.tif"), **common)
    with pytest.raises(DataError, match=r"rgb\.tif: has 3 bands; a SAR raster has 1"):
        map_scene(input=str(tmp_path / "rgb.tif"), **common)
    with pytest.raises(ValueError, match=r"scene\.tif: window 512 is larger than the block 256"):
        map_scene(input=str(tmp_path / "scene.tif"), inference=InferenceOverrides(window=512), block=256, **common)
    with pytest.raises(MemoryError, match=r"scene\.tif: window 64 with batch_size 4000 .* needs about"):
        big_batch = InferenceOverrides(batch_size=4000)
        map_scene(input=str(tmp_path / "scene.tif"), inference=big_batch, max_memory_gb=1.0, **common)
    with pytest.raises(OutputRefusedError, match=r"scene\.tif: refused as --output: it is an input of this command"):
        map_scene(input=str(tmp_path / "scene.tif"), **{**common, "output": str(tmp_path / "scene.tif")})
    with pytest.raises(DataError, match=r"missing\.ckpt: checkpoint file does not exist"):
        map_scene(input=str(tmp_path / "scene.tif"), **{**common, "ckpt_path": str(tmp_path / "missing.ckpt")})
    assert not (tmp_path / "map.tif").exists()


def test_a_db_scene_maps_as_its_8_bit_conversion_and_its_nodata_is_background(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    db = (20 * np.log10(rng.rayleigh(0.05, (90, 110)) + 1e-3)).astype(np.float32)
    db[:30, :25] = -9999.0  # the product's own nodata (tagged)
    write_raster(tmp_path / "scene_db.tif", db, nodata=-9999.0, **ROTATED)
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt", inference=InferenceConfig(window=32, stride=16))
    with pytest.raises(DataError, match=r"scene_db\.tif: holds float32 values .*--scaling\.source db"):
        map_scene(str(ckpt), str(tmp_path / "scene_db.tif"), str(tmp_path / "refused.tif"), progress=False)
    scaling = SARScaling(source="db")
    map_scene(str(ckpt), str(tmp_path / "scene_db.tif"), str(tmp_path / "map.tif"), scaling=scaling, progress=False)
    cli_main(["convert", "--input", str(tmp_path / "scene_db.tif"), "--output", str(tmp_path / "scene_8bit.tif"),
              "--scaling.source", "db", "--progress", "false"])  # fmt: skip
    cli_main(["map", "--ckpt_path", str(ckpt), "--input", str(tmp_path / "scene_8bit.tif"),
              "--output", str(tmp_path / "map_8bit.tif"), "--progress", "false"])  # fmt: skip
    direct, converted = read_raster(tmp_path / "map.tif")[0], read_raster(tmp_path / "map_8bit.tif")[0]
    np.testing.assert_array_equal(direct, converted)
    assert (direct[:30, :25] == 0).all() and (direct[30:] != 0).mean() > 0.5


def test_map_warns_when_the_scene_pixel_size_is_far_from_the_training_gsd(tmp_path: Path) -> None:
    sar = np.random.default_rng(8).integers(0, 256, (64, 64), dtype=np.uint8)
    write_raster(tmp_path / "s1.tif", sar, crs="EPSG:32654", transform=Affine(10.0, 0, 4e5, 0, -10.0, 3.9e6))
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    with pytest.warns(UserWarning, match=r"s1\.tif: pixel size 10 x 10 m lies far outside the 0.15-0.5 m"):
        map_scene(str(ckpt), str(tmp_path / "s1.tif"), str(tmp_path / "map.tif"), progress=False)


@needs_gdalinfo
def test_gdal_reads_the_map_as_a_valid_cog_with_categories_overviews_and_nodata(tmp_path: Path) -> None:
    sar = random_scene(tmp_path / "scene.tif", 600, 560, seed=5)  # large enough for one overview, at 1/4
    sar[:260, :240] = 0  # a border-connected no-data corner
    write_raster(tmp_path / "scene.tif", sar, **ROTATED)
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    output = map_scene(str(ckpt), input=str(tmp_path / "scene.tif"), output=str(tmp_path / "map.tif"),
                       nodata=NoDataRule(apply=True), confidence=True, progress=False)  # fmt: skip
    info = gdalinfo(output)
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    classes, confidence = info["bands"]
    assert classes["categories"][8] == "Building" and classes["categories"][1] == "Bareland"
    assert classes["description"] == "land-cover class" and confidence["description"].startswith("confidence")
    assert classes["noDataValue"] == 0 == confidence["noDataValue"]
    assert [o["size"] for o in classes["overviews"]] == [[140, 150]] == [o["size"] for o in confidence["overviews"]]
    check = validate_cog(output)
    assert check.returncode == 0 and "is a valid cloud optimized GeoTIFF" in check.stdout, check.stdout + check.stderr
    mapped = read_raster(output)
    assert (mapped[:, :130, :120] == 0).all()  # no data in both bands; the rest keeps the model's classes
    assert (mapped[0, 130:] > 0).mean() > 0.5
    assert (tmp_path / "map.qml").is_file()
