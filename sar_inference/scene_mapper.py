"""``python cli.py map``: a georeferenced land-cover map of a SAR scene of any size, block by block.

The scene is read in square blocks with a halo of context (rasterio windows), each block is
predicted with the sliding window + TTA engine (one or several checkpoints), the halo is cropped
off and the block is written into a tiled, compressed GeoTIFF that copies the scene's CRS and
transform. Memory depends on the block size, not on the scene size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window
from tqdm import tqdm

from datamodules.nodata import OverviewNoData
from datamodules.output_safety import Output, check_outputs, record_file
from datamodules.rasters import (
    DataError,
    RasterInfo,
    geotiff_profile,
    open_geotiff_writer,
    overview_shape,
    raster_info,
    read_raster,
)
from datamodules.transforms import NormalisationMode
from sar_inference.engine import Blend, Flip
from sar_inference.memory_budget import check_memory
from sar_inference.predictor import TaskPredictor, check_weights, combine, default_class_weights, load_predictor
from sar_inference.preview import write_preview


@dataclass(frozen=True)
class Block:
    """A part of the scene: ``core`` is written, ``region`` (core + halo, inside the scene) is read."""

    core: Window
    region: Window

    @property
    def crop(self) -> tuple[slice, slice]:
        """Rows and columns of the core inside the region."""
        top, left = self.core.row_off - self.region.row_off, self.core.col_off - self.region.col_off
        return slice(top, top + self.core.height), slice(left, left + self.core.width)


def scene_blocks(height: int, width: int, block: int, halo: int) -> Iterator[Block]:
    """Blocks of at most ``block`` x ``block`` pixels tiling the scene row by row, each with its halo."""
    if block <= 0 or halo < 0:
        raise ValueError(f"block must be positive and halo non-negative, got {block} and {halo}")
    for top in range(0, height, block):
        for left in range(0, width, block):
            core = Window(left, top, min(block, width - left), min(block, height - top))
            y0, x0 = max(0, top - halo), max(0, left - halo)
            y1, x1 = min(height, top + core.height + halo), min(width, left + core.width + halo)
            yield Block(core, Window(x0, y0, x1 - x0, y1 - y0))


def _scene_info(path: Path) -> RasterInfo:
    info = raster_info(path)
    if info.count != 1:
        raise DataError(path, f"has {info.count} bands; a SAR scene has 1")
    return info


def map_scene(
    ckpt_path: str | list[str],
    input: str,
    output: str,
    window: int | None = None,
    stride: int | None = None,
    scales: list[float] | None = None,
    flips: list[Flip] | None = None,
    batch_size: int | None = None,
    blend: Blend | None = None,
    block: int = 2048,
    halo: int | None = None,
    model_weights: list[float] | None = None,
    class_weights: list[float] | None = None,
    confidence: bool = False,
    nodata: bool = False,
    nodata_min_area: int = 10000,
    nodata_threshold: float = 0.9985,
    normalisation: NormalisationMode | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    preview: str | None = None,
    preview_size: int = 1024,
    max_memory_gb: float | None = None,
    progress: bool = True,
) -> Path:
    """Map a single-band SAR scene to a uint8 class GeoTIFF (0..8) on the scene's grid.

    The output is tiled (256), deflate-compressed, carries the class colour map and the scene's CRS
    and transform (copied, rotated ones included), and replaces ``output`` only once complete.

    Args:
        ckpt_path: a stage-2 checkpoint (``SARSegmenter``), or a list of them for an ensemble
            (``--ckpt_path "[a.ckpt,b.ckpt]"``).
        input: the SAR scene (1 band, pixel values scaled like the training tiles, e.g. 8-bit).
        output: the map GeoTIFF to write.
        window: sliding-window side in pixels (default: the first checkpoint's ``inference``).
        stride: step between windows (default: the checkpoint's).
        scales: TTA scales (default: the checkpoint's; reference [0.5,0.75,1.0,1.25,1.5,1.75]).
        flips: TTA flips among none, h, v (default: the checkpoint's; reference [none,h,v]).
        batch_size: windows per forward pass (default: the checkpoint's).
        blend: window blending, mean or gaussian (default: the checkpoint's).
        block: side of the square blocks the scene is processed in; bounds the memory.
        halo: context pixels read around each block and cropped off before writing. Default
            max((window - stride) / 2, window / 8): half the overlap the window grid has anyway, so
            blocks add almost no windows; more gives windows at block borders more context.
        model_weights: one weight per checkpoint (default 1 each).
        class_weights: per-class factors of the argmax. Default: [0,1,...,1] for an ensemble (class
            0 weight 0 makes only classes 1..8 win, as the reference does), all 1 for one model.
        confidence: add a second band, floor(255 p) of the mean probability of the chosen class.
        nodata: set the scene's no-data region (large zero regions connected to the border) to 0
            when the valid area is below ``nodata_threshold``; detected on an overview of at most
            ``block`` pixels a side (exact when the scene fits in one block).
        nodata_min_area: smallest no-data region in pixels.
        nodata_threshold: valid fraction below which the no-data region is set to 0 (99.85 %).
        normalisation: override of the normalisation saved in the checkpoints.
        mean: per-channel mean (raw units) for ``custom`` normalisation.
        std: per-channel standard deviation (raw units) for ``custom`` normalisation.
        preview: also write a PNG quick-look here (SAR beside the map, with a legend).
        preview_size: longer side of each preview panel in pixels.
        max_memory_gb: memory budget checked before the run (default: the RAM available now).
        progress: show a progress bar over blocks.

    Returns:
        The written map.

    Raises:
        OutputRefusedError: ``output`` or ``preview`` may not be written (an input, the same path twice,
            a folder, a file this project did not write; see :mod:`datamodules.output_safety`), before
            any work.
        DataError: naming the file: unreadable scene or checkpoint, wrong band count, NaN/inf
            pixels, a checkpoint that is not a SAR model.
        ValueError: a window larger than the block, or bad weights.
        MemoryError: the window and batch would not fit in the memory budget.
    """
    scene = Path(input)
    outputs = [Output(output, "file", "--output")] + ([Output(preview, "file", "--preview")] if preview else [])
    checkpoints = [ckpt_path] if isinstance(ckpt_path, str) else ckpt_path
    check_outputs("map", outputs, inputs=[scene, *checkpoints])  # before any work: nothing is computed for nothing
    info = _scene_info(scene)
    predictor = load_predictor(
        ckpt_path, window=window, stride=stride, scales=scales, flips=flips, batch_size=batch_size, blend=blend,
        normalisation=normalisation, mean=mean, std=std,
    )  # fmt: skip
    cfg, models, classes = predictor.inference, len(predictor.tasks), predictor.num_classes
    if cfg.window > block:
        raise ValueError(f"{scene}: window {cfg.window} is larger than the block {block}; raise block or lower window")
    halo = max((cfg.window - cfg.stride) // 2, cfg.window // 8) if halo is None else halo
    weights = class_weights if class_weights is not None else default_class_weights(models, classes)
    check_weights(model_weights, weights, models, classes)
    region = min(block + 2 * halo, info.height), min(block + 2 * halo, info.width)
    check_memory(cfg, *region, classes, models, max_memory_gb, str(scene))
    masker = _nodata_detector(scene, info, block, nodata_min_area, nodata_threshold) if nodata else None

    write_scene_map(
        scene,
        output,
        predictor,
        block=block,
        halo=halo,
        model_weights=model_weights,
        class_weights=weights,
        confidence=confidence,
        masker=masker,
        progress=progress,
    )
    record_file(output, "map")
    if preview:
        write_preview(preview, scene, output, preview_size)
        record_file(preview, "map")
    return Path(output)


def _nodata_detector(scene: Path, info: RasterInfo, max_side: int, min_area: int, threshold: float) -> OverviewNoData:
    overview = read_raster(scene, bands=1, out_shape=overview_shape(info.height, info.width, max_side))[0]
    return OverviewNoData(overview, info.shape, min_area, threshold)


def write_scene_map(
    scene: Path,
    output: str | Path,
    predictor: TaskPredictor,
    *,
    block: int,
    halo: int,
    model_weights: list[float] | None = None,
    class_weights: list[float] | None = None,
    confidence: bool = False,
    masker: OverviewNoData | None = None,
    progress: bool = True,
) -> None:
    """Predict ``scene`` block by block and write the map GeoTIFF ``output`` atomically.

    Args:
        scene: single-band raster.
        output: map to write: band 1 classes (colour map), band 2 confidence when asked.
        predictor: the models and their sliding window + TTA settings.
        block: side of the written blocks.
        halo: context pixels read around each block and cropped off.
        model_weights: one weight per model.
        class_weights: per-class factors of the argmax.
        confidence: write the confidence band.
        masker: no-data of the scene, applied to each block; None for none.
        progress: show a progress bar over blocks.
    """
    info = _scene_info(scene)
    blocks = list(scene_blocks(info.height, info.width, block, halo))
    profile = geotiff_profile(info.height, info.width, 2 if confidence else 1, "uint8", crs=info.crs)
    profile["transform"] = info.transform  # the scene's Affine as it is, never recomputed
    with open_geotiff_writer(output, profile, colormap=True) as dst:
        dst.set_band_description(1, "land-cover class")
        if confidence:
            dst.set_band_description(2, "confidence, floor(255 p) of the class")
        for part in tqdm(blocks, desc=f"map {scene.name}", unit="block", disable=not progress):
            raw = read_raster(scene, bands=1, window=part.region)
            rows, cols = part.crop
            result = combine([p[:, rows, cols] for p in predictor.probs(raw)], model_weights, class_weights)
            label = result.label
            if masker is not None:
                label = np.where(masker.block_mask(raw[0][rows, cols], part.core.row_off, part.core.col_off), 0, label)
            dst.write(label.astype(np.uint8), 1, window=part.core)
            if confidence:
                dst.write(result.confidence, 2, window=part.core)
