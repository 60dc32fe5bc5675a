"""Maps of whole scenes, block by block: exactness of the blocks, georeferencing, no-data, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from torch import nn

from datamodules.classes import rasterio_colormap
from datamodules.nodata import OverviewNoData
from datamodules.output_safety import OutputRefusedError
from datamodules.rasters import DataError, read_raster, write_raster
from datamodules.transforms import Normaliser
from lightning_modules.sar_segmenter import SARSegmenter
from sar_inference.checkpoints import LoadedTask
from sar_inference.engine import probs_to_label, soft_to_uint8, tta_probs
from sar_inference.predictor import TaskPredictor
from sar_inference.scene_mapper import map_scene, scene_blocks, write_scene_map
from sar_inference.settings import InferenceConfig
from sar_landcover.commands import main as cli_main
from sar_studies.checkpoints import sar_checkpoint

UMBRA = Path("/work/shared/real_samples/umbra_mount_yasur.tiff")
ROTATED = {"crs": "EPSG:32654", "transform": Affine(0.3, 0.05, 4e5, 0.05, -0.3, 3.9e6)}


def conv1x1_task(seed: int = 0, bias_class: int | None = None) -> LoadedTask:
    """A translation-equivariant task: a 1x1 convolution, so any windowing gives the same probabilities."""
    torch.manual_seed(seed)
    task = SARSegmenter()
    task.model = nn.Conv2d(1, 9, kernel_size=1)
    if bias_class is not None:
        with torch.no_grad():
            task.model.weight.zero_()
            task.model.bias.zero_()
            task.model.bias[bias_class] = 5.0
    return LoadedTask(Path("conv1x1"), task.eval(), Normaliser("divide_255", 1))


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
        tmp_path / "scene.tif", tmp_path / "map.tif", TaskPredictor([loaded], cfg), block=64, halo=halo,
        confidence=True, progress=False,
    )  # fmt: skip
    image = loaded.normaliser(torch.from_numpy(sar)[None, None])
    probs = tta_probs(loaded.task, image, 9, window=32, stride=16, batch_size=64, flips=("none", "h"))
    written = read_raster(tmp_path / "map.tif")
    np.testing.assert_array_equal(written[0], probs_to_label(probs).numpy())
    confidence = soft_to_uint8(probs.max(dim=0).values).numpy().astype(int)
    assert np.abs(written[1].astype(int) - confidence).max() <= 1  # floor() of sums in another order
    assert (written[1] == confidence).mean() > 0.99


@pytest.mark.skipif(not UMBRA.exists(), reason=f"real sample {UMBRA} not available")
def test_map_of_the_umbra_sample_keeps_its_georeferencing_exactly(tmp_path: Path) -> None:
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    out, preview = tmp_path / "umbra_map.tif", tmp_path / "umbra.png"
    # The whole command line, in this process; scale 1/16 makes each 1024 block a few 64-pixel windows.
    cli_main(
        ["map", "--ckpt_path", str(ckpt), "--input", str(UMBRA), "--output", str(out), "--window", "64",
         "--stride", "64", "--scales", "[0.0625]", "--block", "1024", "--confidence", "true",
         "--preview", str(preview), "--preview_size", "200", "--progress", "false"]
    )  # fmt: skip
    with rasterio.open(UMBRA) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform  # exact, rotation included
        assert src.transform.b != 0  # the sample's transform is rotated
        assert (dst.width, dst.height, dst.count, dst.dtypes) == (2000, 2000, 2, ("uint8", "uint8"))
        assert dst.profile["tiled"] and dst.block_shapes[0] == (256, 256) and dst.compression.value == "DEFLATE"
        assert dst.colormap(1)[8] == rasterio_colormap()[8]
        assert dst.read(1).max() <= 8
    with rasterio.open(preview) as png:
        assert png.width == 2 * 200 + 8 and png.height > 200  # two panels, a gap and the legend strip
    # The record of what the map wrote (so a re-run may replace both) and nothing else, no partial file.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".sar-landcover-files.json", "sar.ckpt", "umbra.png", "umbra_map.tif"
    ]  # fmt: skip


def test_nodata_region_of_the_scene_is_set_to_background(tmp_path: Path) -> None:
    sar = np.random.default_rng(1).integers(1, 256, (96, 96), dtype=np.uint8)
    sar[:40, :30] = 0  # a border-connected no-data corner
    sar[60, 60] = sar[70, 20] = 0  # scattered interior zeros stay predicted
    write_raster(tmp_path / "scene.tif", sar, **ROTATED)
    predictor = TaskPredictor([conv1x1_task(bias_class=3)], InferenceConfig(window=32, stride=16))
    masker = OverviewNoData(sar, sar.shape, min_area=100)
    write_scene_map(tmp_path / "scene.tif", tmp_path / "map.tif", predictor, block=32, halo=4, masker=masker)
    label = read_raster(tmp_path / "map.tif")[0]
    assert (label[:40, :30] == 0).all()
    assert (label[sar != 0] == 3).all() and label[60, 60] == 3 and label[70, 20] == 3


def test_nodata_found_on_a_reduced_overview_covers_the_full_resolution_region() -> None:
    sar = np.random.default_rng(2).integers(1, 256, (400, 400), dtype=np.uint8)
    sar[:200, :120] = 0
    masker = OverviewNoData(sar[::4, ::4], sar.shape, min_area=2000)  # a 100 x 100 nearest overview
    mask = np.concatenate([masker.block_mask(sar[top : top + 100], top, 0) for top in range(0, 400, 100)])
    assert mask[:200, :120].all() and not mask[200:].any() and not mask[:, 120:].any()
    assert not OverviewNoData(sar[::4, ::4], sar.shape, min_area=2000, valid_fraction_threshold=0.5).active


def test_a_failed_map_leaves_the_previous_output_and_no_partial_file(tmp_path: Path) -> None:
    scene = np.full((1, 64, 64), 100.0, dtype=np.float32)
    scene[0, 50, 50] = np.nan  # in the last block only
    write_raster(tmp_path / "scene.tif", scene, **ROTATED)
    (tmp_path / "map.tif").write_bytes(b"previous map")
    predictor = TaskPredictor([conv1x1_task()], InferenceConfig(window=16, stride=16))
    with pytest.raises(DataError, match=r"scene\.tif: contains 1 NaN or inf"):
        write_scene_map(tmp_path / "scene.tif", tmp_path / "map.tif", predictor, block=32, halo=0, progress=False)
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
    with pytest.raises(DataError, match=r"rgb\.tif: has 3 bands; a SAR scene has 1"):
        map_scene(input=str(tmp_path / "rgb.tif"), **common)
    with pytest.raises(ValueError, match=r"scene\.tif: window 512 is larger than the block 256"):
        map_scene(input=str(tmp_path / "scene.tif"), window=512, block=256, **common)
    with pytest.raises(MemoryError, match=r"scene\.tif: window 64 with batch_size 4000 .* needs about"):
        map_scene(input=str(tmp_path / "scene.tif"), batch_size=4000, max_memory_gb=1.0, **common)
    with pytest.raises(OutputRefusedError, match=r"scene\.tif: refused as --output: it is an input of this command"):
        map_scene(input=str(tmp_path / "scene.tif"), **{**common, "output": str(tmp_path / "scene.tif")})
    with pytest.raises(DataError, match=r"missing\.ckpt: checkpoint file does not exist"):
        map_scene(input=str(tmp_path / "scene.tif"), **{**common, "ckpt_path": str(tmp_path / "missing.ckpt")})
    assert not (tmp_path / "map.tif").exists()
