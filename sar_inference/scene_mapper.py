"""``python cli.py map``: a georeferenced land-cover map of a SAR scene of any size, block by block.

The scene is read in square blocks with a halo of context (rasterio windows) as 8-bit amplitude
(converted by its ``scaling`` when it is not 8-bit), each block is predicted with the sliding window
+ TTA engine (one or several checkpoints, on the runtime and device asked for), the halo is cropped
off and the block is written into a Cloud-Optimized GeoTIFF (:mod:`datamodules.cog`) that copies the
scene's CRS and transform, with overviews, class names and colours, and nodata 0 on the scene's own
nodata and the no-data rule's region. Memory depends on the block size, not on the scene size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from rasterio.windows import Window
from tqdm import tqdm

from datamodules.classes import BACKGROUND, NUM_CLASSES
from datamodules.cog import FIRST_OVERVIEW, BandSpec, class_band, open_cog_writer
from datamodules.nodata import NoDataRule, OverviewNoData
from datamodules.output_safety import Output, check_outputs, record_file
from datamodules.pixel_size import warn_if_far_from_training_gsd
from datamodules.qgis_style import write_qgis_style
from datamodules.rasters import overview_shape
from datamodules.sar_scaling import SARScaling, ScaledSAR
from sar_inference.memory_budget import check_memory
from sar_inference.predictor import EnsembleSettings, TaskPredictor, combine, load_predictor
from sar_inference.preview import write_preview
from sar_inference.runtimes import RuntimeSettings
from sar_inference.settings import InferenceOverrides
from sar_tracking.map_run import MapTracking, log_map

CONFIDENCE_DESCRIPTION = "confidence, floor(255 p) of the class"
NODATA = BACKGROUND
"""The maps' nodata value: class 0 is background / unknown / no-data in the class table."""


@dataclass(frozen=True)
class OverviewSettings:
    """The map's internal overviews: what QGIS draws a zoomed-out view from instead of the full resolution."""

    build: bool = True
    """Build overviews (factors ``first_factor``, twice that, ... until one tile); confidence ones are averages."""
    first_factor: int = FIRST_OVERVIEW
    """Factor of the largest overview: 2 adds the half-scale level to the default's (BENCHMARKS.md: its size)."""
    classes: Literal["mode", "nearest"] = "mode"
    """Resampling of the class band's overviews: ``mode`` (the majority class) or ``nearest``."""


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


def map_scene(
    ckpt_path: str | list[str],
    input: str,
    output: str,
    inference: InferenceOverrides = InferenceOverrides(),
    ensemble: EnsembleSettings = EnsembleSettings(),
    scaling: SARScaling = SARScaling(),
    nodata: NoDataRule = NoDataRule(apply=False),
    runtime: RuntimeSettings = RuntimeSettings(),
    block: int = 2048,
    halo: int | None = None,
    confidence: bool = False,
    overviews: OverviewSettings = OverviewSettings(),
    qgis_style: bool = True,
    preview: str | None = None,
    preview_size: int = 1024,
    tracking: MapTracking = MapTracking(),
    max_memory_gb: float | None = None,
    progress: bool = True,
) -> Path:
    """Map a single-band SAR scene to a uint8 class map (0..8), a Cloud-Optimized GeoTIFF on the scene's grid.

    The output is a COG (tiles of 256, deflate, internal overviews) with the scene's CRS and
    transform (copied, rotated ones included), the class colours and names (``gdalinfo`` lists
    "8: Building"; the names are kept in ``<output>.aux.xml``, GDAL's sidecar), named bands and
    nodata 0: the scene's own nodata (nodata value, mask band) and the no-data rule's region are
    written 0, which GIS tools show transparent (class 0 is background / unknown / no-data, so a
    model's own class-0 pixels are no-data too). It replaces ``output`` only once complete; a QGIS
    style ``<output stem>.qml`` beside it makes QGIS show the legend. A scene whose pixel size lies
    far outside the model's training GSD gets a warning.

    Args:
        ckpt_path: a stage-2 checkpoint (``SARSegmenter``), or a list of them for an ensemble
            (``--ckpt_path "[a.ckpt,b.ckpt]"``); the checkpoint alone says how to feed its network.
        input: the SAR scene (1 band): 8-bit amplitude as OpenEarthMap-SAR, or another product
            with ``--scaling.source``.
        output: the map GeoTIFF to write.
        inference: sliding window and TTA overrides (``--inference.scales [0.5,1.0]``); each field
            None keeps the first checkpoint's.
        ensemble: model weights and class weights of the argmax (default: class 0 weight 0 for an
            ensemble, so only classes 1..8 win, as the reference does).
        scaling: how the scene's values become 8-bit amplitude (``--scaling.source db`` for a dB
            product; the default, ``uint8``, refuses anything else and says what it found).
        nodata: the reference's rule for black border-connected no-data regions
            (``--nodata.apply true``); detected on an overview of at most ``block`` pixels a side
            (exact when the scene fits in one block).
        runtime: where the networks run: ``--runtime.device cuda --runtime.precision bf16-mixed``
            on a GPU node; ``--runtime.runtime torch`` for PyTorch on the CPU (the default ``auto``
            takes ONNX Runtime there, else OpenVINO, whichever is installed first).
        block: side of the square blocks the scene is processed in; bounds the memory.
        halo: context pixels read around each block and cropped off before writing. Default
            max((window - stride) / 2, window / 8): half the overlap the window grid has anyway, so
            blocks add almost no windows; more gives windows at block borders more context.
        confidence: add a second band, floor(255 p) of the mean probability of the chosen class.
        overviews: whether to build overviews, and the class band's resampling.
        qgis_style: write the QGIS style ``<output stem>.qml`` beside the map.
        preview: also write a PNG quick-look here (SAR beside the map, with a legend).
        preview_size: longer side of each preview panel in pixels.
        tracking: log the class shares (and the preview) to a W&B run (``--tracking.log true``;
            offline unless W&B is configured online).
        max_memory_gb: memory budget checked before the run (default: the RAM available now).
        progress: show a progress bar over blocks.

    Returns:
        The written map.

    Raises:
        OutputRefusedError: ``output`` or ``preview`` may not be written (an input, the same path twice,
            a folder, a file this project did not write; see :mod:`datamodules.output_safety`), before
            any work.
        DataError: naming the file: unreadable scene or checkpoint, wrong band count, NaN/inf
            pixels, values the scaling would misread, a checkpoint that is not a SAR model.
        ValueError: a window larger than the block, or bad weights.
        MemoryError: the window and batch would not fit in the memory budget.
    """
    checkpoints = [ckpt_path] if isinstance(ckpt_path, str) else ckpt_path
    # before any work, nothing is computed for nothing: the checkpoints are inputs too
    _check_map_outputs(output, preview, qgis_style, inputs=[Path(input), *checkpoints])
    scene = ScaledSAR(input, scaling)
    predictor = load_predictor(ckpt_path, inference, runtime)
    return map_with_predictor(
        predictor, scene, output, ensemble=ensemble, nodata=nodata, block=block, halo=halo, confidence=confidence,
        overviews=overviews, qgis_style=qgis_style, preview=preview, preview_size=preview_size, tracking=tracking,
        max_memory_gb=max_memory_gb, progress=progress,
    )  # fmt: skip


def map_with_predictor(
    predictor: TaskPredictor,
    scene: ScaledSAR,
    output: str | Path,
    *,
    ensemble: EnsembleSettings = EnsembleSettings(),
    nodata: NoDataRule = NoDataRule(apply=False),
    block: int = 2048,
    halo: int | None = None,
    confidence: bool = False,
    overviews: OverviewSettings = OverviewSettings(),
    qgis_style: bool = True,
    preview: str | None = None,
    preview_size: int = 1024,
    tracking: MapTracking = MapTracking(),
    max_memory_gb: float | None = None,
    progress: bool = True,
) -> Path:
    """:func:`map_scene` with models already loaded (the Python API keeps them between scenes); same arguments."""
    _check_map_outputs(output, preview, qgis_style, inputs=[scene.path])
    cfg, models, classes = predictor.inference, len(predictor.models), predictor.num_classes
    if cfg.window > block:
        raise ValueError(
            f"{scene.path}: window {cfg.window} is larger than the block {block}; raise block or lower window"
        )
    halo = max((cfg.window - cfg.stride) // 2, cfg.window // 8) if halo is None else halo
    class_weights = ensemble.class_weights_for(models, classes)
    info = scene.info
    region = min(block + 2 * halo, info.height), min(block + 2 * halo, info.width)
    check_memory(cfg, *region, classes, models, max_memory_gb, str(scene.path))
    warn_if_far_from_training_gsd(info, predictor.training_gsd)
    masker = _nodata_detector(scene, block, nodata) if nodata.apply else None

    counts = write_scene_map(
        scene,
        output,
        predictor,
        block=block,
        halo=halo,
        model_weights=ensemble.model_weights,
        class_weights=class_weights,
        confidence=confidence,
        masker=masker,
        overviews=overviews,
        progress=progress,
    )
    written = [Path(output), _sidecar(output)]
    if qgis_style:
        written.append(write_qgis_style(output))
    if preview:
        write_preview(preview, scene.path, output, preview_size)
        written.append(Path(preview))
    for file in written:  # recorded, so that a re-run may replace them
        if file.exists():
            record_file(file, "map")
    if tracking.log:
        log_map(tracking, scene.path, Path(output), counts, preview)
    return Path(output)


def _sidecar(output: str | Path) -> Path:
    """GDAL's ``<output>.aux.xml``, where the class names are kept."""
    return Path(output).with_name(Path(output).name + ".aux.xml")


def _check_map_outputs(output: str | Path, preview: str | None, qgis_style: bool, inputs: list[Path]) -> None:
    """Refuse (output rule) the map, its sidecar, its QGIS style and the preview before any work."""
    outputs = [Output(output, "file", "--output"), Output(_sidecar(output), "file", "the map's .aux.xml")]
    if qgis_style:
        outputs.append(
            Output(Path(output).with_suffix(".qml"), "file", "the map's QGIS style (--qgis_style false skips it)")
        )
    if preview:
        outputs.append(Output(preview, "file", "--preview"))
    check_outputs("map", outputs, inputs=inputs)


def _nodata_detector(scene: ScaledSAR, max_side: int, rule: NoDataRule) -> OverviewNoData:
    overview, _ = scene.read(out_shape=overview_shape(scene.info.height, scene.info.width, max_side))
    return OverviewNoData(overview[0], scene.info.shape, rule)


def write_scene_map(
    scene: ScaledSAR,
    output: str | Path,
    predictor: TaskPredictor,
    *,
    block: int,
    halo: int,
    model_weights: Sequence[float] | None = None,
    class_weights: Sequence[float] | None = None,
    confidence: bool = False,
    masker: OverviewNoData | None = None,
    overviews: OverviewSettings = OverviewSettings(),
    progress: bool = True,
) -> np.ndarray:
    """Predict ``scene`` block by block and write the map COG ``output`` atomically.

    Args:
        scene: the single-band scene, read as 8-bit amplitude.
        output: map to write: band 1 classes (colour map), band 2 confidence when asked.
        predictor: the models and their sliding window + TTA settings.
        block: side of the written blocks.
        halo: context pixels read around each block and cropped off.
        model_weights: one weight per model.
        class_weights: per-class factors of the argmax.
        confidence: write the confidence band.
        masker: the no-data rule's region of the scene, applied to each block; None for none.
        overviews: the overviews to build.
        progress: show a progress bar over blocks.

    Returns:
        The pixel count of each value 0..8 written in the class band (0: no data or background).
    """
    info = scene.info
    blocks = list(scene_blocks(info.height, info.width, block, halo))
    bands = [class_band(resampling=overviews.classes)]
    if confidence:
        bands.append(BandSpec(CONFIDENCE_DESCRIPTION, "average"))
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    with open_cog_writer(
        output, height=info.height, width=info.width, dtype="uint8", bands=bands,
        crs=info.crs, transform=info.transform,  # the scene's Affine as it is, never recomputed
        nodata=NODATA, overviews=overviews.build, first_overview=overviews.first_factor,
    ) as dst:  # fmt: skip
        for part in tqdm(blocks, desc=f"map {scene.path.name}", unit="block", disable=not progress):
            raw, valid = scene.read(window=part.region)
            rows, cols = part.crop
            result = combine([p[:, rows, cols] for p in predictor.probs(raw)], model_weights, class_weights)
            invalid = ~valid[rows, cols]
            if masker is not None:
                invalid |= masker.block_mask(raw[0][rows, cols], part.core.row_off, part.core.col_off)
            label = np.where(invalid, NODATA, result.label).astype(np.uint8)
            counts += np.bincount(label.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
            dst.write(label, 1, window=part.core)
            if confidence:
                dst.write(np.where(invalid, 0, result.confidence).astype(np.uint8), 2, window=part.core)
    return counts
