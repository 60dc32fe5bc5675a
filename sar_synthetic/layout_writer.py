"""Write a synthetic data root: both datasets in the official layouts, written atomically, with a marker.

Layout under the data root (one root holds both datasets)::

    OpenEarthMap/<region>/images/<region>_<n>.tif     3-band RGB, UTM CRS, north-up
    OpenEarthMap/<region>/labels/<region>_<n>.tif     clean labels 0..8
    OpenEarthMap/{train,val,test}.txt                 file names, ~60/20/20
    OpenEarthMap-SAR/train/sar_images/TrainArea_###.tif   1-band SAR, UTM CRS, rotated transform
    OpenEarthMap-SAR/train/rgb_images/TrainArea_###.tif   optical, same grid (last tile missing)
    OpenEarthMap-SAR/train/labels/TrainArea_###.tif       noisy labels, no CRS
    OpenEarthMap-SAR/train/labels_truth/TrainArea_###.tif clean truth (demo-only extra)
    OpenEarthMap-SAR/train/labels_optical_date/TrainArea_###.tif  what the optical partner shows, on
                                                      its grid (demo-only extra: a perfect optical
                                                      labeller's labels; not for the tile without one)
    OpenEarthMap-SAR/val/{sar_images,rgb_images,labels}/ValArea_###.tif    clean labels
    OpenEarthMap-SAR/test/{sar_images,labels}/TestArea_###.tif             clean labels, 0 in wedges
    SYNTHETIC.json                                    the config; marks the dataset complete

The last train tile deliberately has no RGB partner so that loaders can be tested to skip it with a
warning. OEM-SAR tiles have the real data's scale gap: each draws its grid GSD g and the GSD g_o of
its optical source (OEM-like); the scene is drawn at the native (OEM pixel) scale, its optical image
is rendered there and resampled onto the grid, g_o / g = 0.5-3.3 times enlarged, and the SAR and the
labels are rendered on the grid (``sar_content_scale``, ``oem_gsd_range``, ``sar_gsd_range``).
The optical partner shows the scene at another date and is misregistered by a few pixels
(``sar_synthetic.acquisition``); the SAR image and the truth show the SAR date.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datamodules.classes import BACKGROUND
from datamodules.layout import LABELS, OEM_DIR, OEM_SAR_DIR, RGB_IMAGES, SAR_IMAGES, SYNTHETIC_MARKER
from datamodules.output_safety import Output, check_outputs
from datamodules.rasters import write_raster
from sar_synthetic.acquisition import misregister, misregistration, optical_date_scene
from sar_synthetic.arrays import resample, resample_label
from sar_synthetic.config import SyntheticConfig
from sar_synthetic.georeference import oem_georef, sar_georef
from sar_synthetic.label_noise import corrupt_labels
from sar_synthetic.optical import oem_style, render_optical, sar_optical_style
from sar_synthetic.sar import nodata_wedge, render_sar
from sar_synthetic.scene import generate_scene
from sar_synthetic.tiles import PlannedTile, oem_splits, oem_tiles, sar_content_scale, sar_tiles, tile_rng, wedge_tiles

MARKER = SYNTHETIC_MARKER
OPTICAL_DATE = "labels_optical_date"


def _write_oem_tile(out: Path, tile: PlannedTile, config: SyntheticConfig) -> None:
    """Scene, sharp optical image and clean label of one OEM tile."""
    region = tile.name.rsplit("_", 1)[0]
    region_index = tile.index // config.oem_tiles_per_region
    label = generate_scene(tile_rng(config.seed, "oem", tile.index, 0), tile.size)
    image = render_optical(tile_rng(config.seed, "oem", tile.index, 1), label, oem_style())
    crs, transform = oem_georef(tile_rng(config.seed, "oem", tile.index, 2), region_index, config.oem_gsd_range)
    folder = out / OEM_DIR / region
    write_raster(folder / "images" / tile.name, image, crs=crs, transform=transform)
    write_raster(folder / LABELS / tile.name, label, crs=crs, transform=transform, colormap=True)


def _write_sar_tile(out: Path, tile: PlannedTile, config: SyntheticConfig, wedge: bool) -> None:
    """SAR, paired optical and labels of one OEM-SAR tile (see the module docstring for the layout)."""

    def rng(purpose: int) -> np.random.Generator:
        return tile_rng(config.seed, tile.dataset, tile.index, purpose)

    count = {"train": config.sar_train_tiles, "val": config.sar_val_tiles, "test": config.sar_test_tiles}
    crs, transform, gsd = sar_georef(rng(2), tile.index, count[tile.dataset], config.sar_gsd_range)
    scale = sar_content_scale(config, gsd, float(rng(7).uniform(*config.oem_gsd_range)))
    # The scene is drawn at the native (OEM pixel) scale, where the optical sensor sees it, then
    # resampled onto the finer or coarser SAR grid; the SAR and the truth live on that grid.
    scene = generate_scene(rng(0), max(16, round(tile.size / scale)))
    label = resample_label(scene, tile.size)
    sar = render_sar(rng(3), label, config.speckle_looks)
    if wedge:
        mask = nodata_wedge(rng(4), tile.size)
        sar[mask] = 0
        label[mask] = BACKGROUND
    folder = out / OEM_SAR_DIR / tile.dataset
    geo = {"crs": crs, "transform": transform}
    write_raster(folder / SAR_IMAGES / tile.name, sar, **geo)
    last_train = tile.dataset == "train" and tile.index == config.sar_train_tiles - 1
    if tile.dataset != "test" and not last_train:
        resolution = float(rng(6).uniform(*config.optical_resolution_range))  # its own stream
        acquisition = rng(8)  # the optical date's differences, on a stream of their own
        seen = optical_date_scene(acquisition, scene, config.changed_objects, config.seasonal_swap)
        rgb = render_optical(rng(1), seen, sar_optical_style(config.domain_gap, resolution))
        shift = misregistration(acquisition, config.optical_shift_max)
        rgb = misregister(resample(rgb.astype(np.float32), tile.size), shift)
        write_raster(folder / RGB_IMAGES / tile.name, np.clip(np.rint(rgb), 0, 255).astype(np.uint8), **geo)
        if tile.dataset == "train":
            seen_label = misregister(resample_label(seen, tile.size)[None], shift)[0]
            write_raster(folder / OPTICAL_DATE / tile.name, seen_label, colormap=True, **geo)
    if tile.dataset == "train":
        noisy = corrupt_labels(rng(5), label, config.label_noise)
        write_raster(folder / LABELS / tile.name, noisy, colormap=True)  # no CRS, like real label tiles
        write_raster(folder / "labels_truth" / tile.name, label, colormap=True, **geo)
    else:
        write_raster(folder / LABELS / tile.name, label, colormap=True, **geo)


def _write_all(out: Path, config: SyntheticConfig, progress: bool) -> None:
    """Write every tile, the OEM split lists and finally the completeness marker into ``out``."""
    oem, sar = oem_tiles(config), sar_tiles(config)
    wedges = wedge_tiles(config)
    with tqdm(total=len(oem) + len(sar), desc="synthetic data", unit="tile", disable=not progress) as bar:
        for tile in oem:
            _write_oem_tile(out, tile, config)
            bar.update()
        for tile in sar:
            _write_sar_tile(out, tile, config, tile.dataset == "test" and tile.index in wedges)
            bar.update()
    for split, names in oem_splits(config, [t.name for t in oem]).items():
        (out / OEM_DIR / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    (out / MARKER).write_text(json.dumps(asdict(config), indent=2) + "\n")


_LATER_FIELDS = {
    "optical_resolution_range",
    "oem_gsd_range",
    "sar_gsd_range",
    "changed_objects",
    "seasonal_swap",
    "optical_shift_max",
}
_FIRST_MARKER_FIELDS = {f.name for f in fields(SyntheticConfig)} - _LATER_FIELDS


def demo_data_complete(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a complete synthetic dataset (its ``SYNTHETIC.json`` marker is valid)."""
    try:
        marker = json.loads((Path(root) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    # Only the fields of the first version are required, so that a dataset written before a field
    # was added still counts as complete (it is kept, with a warning that its config differs).
    return isinstance(marker, dict) and marker.keys() >= _FIRST_MARKER_FIELDS


@contextlib.contextmanager
def _partial_folder(root: Path) -> Iterator[Path]:
    """A hidden sibling of ``root`` to write into; removed if the block fails."""
    partial = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)  # a leftover of this very process
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _check_existing(root: Path, config: SyntheticConfig) -> bool:
    """True if ``root`` is already a complete dataset; raise if it holds anything else."""
    if demo_data_complete(root):
        stored = json.loads((root / MARKER).read_text())
        if stored != json.loads(json.dumps(asdict(config))):  # tuples are lists in JSON
            warnings.warn(
                f"{root} already holds synthetic data generated with {stored}; keeping it "
                f"(requested {asdict(config)}). Remove the folder to regenerate.",
                stacklevel=3,
            )
        return True
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root} exists but is not a complete synthetic dataset (no valid {MARKER}); refusing to "
            "write into it. Point the demo data root at a new folder, or remove this one yourself."
        )
    return False


def generate_demo_data(
    root: str | os.PathLike, settings: SyntheticConfig = SyntheticConfig(), progress: bool = True
) -> Path:
    """Write the synthetic OpenEarthMap + OpenEarthMap-SAR dataset under ``root``.

    The data is written into a hidden sibling folder that is renamed to ``root`` only when complete,
    so a killed run never leaves a dataset that looks complete. The last train tile of OEM-SAR has
    no RGB partner on purpose (loaders must skip it with a warning).

    Args:
        root: destination folder; it must not exist, be empty, or already be complete.
        settings: size, seed and difficulty of the data.
        progress: show a progress bar over tiles.

    Returns:
        ``root`` as a Path.

    Raises:
        FileExistsError: if ``root`` exists and is not a complete synthetic dataset (it is left untouched).
    """
    root = Path(root)
    check_outputs("make-demo-data", [Output(root, "generated_data", "--root")], claim=False)
    if _check_existing(root, settings):
        return root
    with _partial_folder(root) as partial:
        _write_all(partial, settings, progress)
        try:
            os.rename(partial, root)  # also replaces an empty folder
        except OSError:
            if not demo_data_complete(root):  # another process did not finish it first
                raise
            shutil.rmtree(partial, ignore_errors=True)
    return root
