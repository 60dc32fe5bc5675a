"""Raster I/O through rasterio: reading with validation, atomic georeferenced writing, PNG export.

Every problem with an input file is raised as :class:`DataError`, whose message starts with the
path, so a user sees which file is wrong and why instead of a trace from inside GDAL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from datamodules.classes import VALID_LABEL_VALUES, rasterio_colormap
from datamodules.errors import DataError
from datamodules.output_safety import Output, check_outputs, partial_file, partial_folder, write_folder_mark


@dataclass(frozen=True)
class RasterInfo:
    """Shape and georeferencing of a raster, read from its header only."""

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS | None
    transform: Affine
    masked: bool = False
    """The raster marks some pixels invalid: a nodata value, a mask band or an alpha band."""

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)


@contextlib.contextmanager
def _gdal_errors_name(path: Path) -> Iterator[None]:
    """Turn GDAL/rasterio failures inside the block into a DataError naming ``path``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            yield
    except DataError:
        raise
    except (RasterioError, OSError) as err:
        if not path.exists():
            raise DataError(path, "file does not exist") from None
        raise DataError(path, f"unreadable or truncated raster ({err})") from None


def raster_info(path: str | os.PathLike) -> RasterInfo:
    """Read the header of a raster.

    Raises:
        DataError: if the file is missing or not a readable raster.
    """
    path = Path(path)
    with _gdal_errors_name(path), rasterio.open(path) as src:
        masked = any(MaskFlags.all_valid not in flags for flags in src.mask_flag_enums)
        return RasterInfo(path, src.width, src.height, src.count, src.dtypes[0], src.crs, src.transform, masked)


def read_raster(
    path: str | os.PathLike,
    *,
    bands: int | None = None,
    window: Window | None = None,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read a raster (or a window of it) as a (bands, height, width) array.

    Args:
        path: GeoTIFF (or any GDAL raster) to read.
        bands: expected band count; a file with another count is an error.
        window: optional pixel window.
        out_shape: optional (height, width) to read at, nearest-neighbour resampled (a quick-look
            of a large raster without holding it at full size).

    Raises:
        DataError: missing, unreadable or truncated file, wrong band count, NaN or inf values.
    """
    path = Path(path)
    with _gdal_errors_name(path), rasterio.open(path) as src:
        if bands is not None and src.count != bands:
            raise DataError(path, f"has {src.count} band(s), expected {bands}")
        data = src.read(window=window, out_shape=None if out_shape is None else (src.count, *out_shape))
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise DataError(path, f"contains {int((~np.isfinite(data)).sum())} NaN or inf value(s)")
    return data


def read_masked(
    path: str | os.PathLike,
    *,
    bands: int | None = None,
    window: Window | None = None,
    out_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a raster and where it is valid by its own nodata (its nodata value, mask band or alpha band).

    As :func:`read_raster`, but NaN or inf values are allowed where the raster marks pixels invalid
    (a float nodata of NaN is common); invalid pixels are set to 0.

    Returns:
        ``(data, valid)``: (bands, H, W) values and an (H, W) bool mask, True where every band is valid.

    Raises:
        DataError: missing, unreadable or truncated file, wrong band count, NaN or inf in valid pixels.
    """
    path = Path(path)
    with _gdal_errors_name(path), rasterio.open(path) as src:
        if bands is not None and src.count != bands:
            raise DataError(path, f"has {src.count} band(s), expected {bands}")
        shape = None if out_shape is None else (src.count, *out_shape)
        data = src.read(window=window, out_shape=shape)
        if all(MaskFlags.all_valid in flags for flags in src.mask_flag_enums):
            valid = np.ones(data.shape[1:], dtype=bool)
        else:
            valid = (src.read_masks(window=window, out_shape=shape) > 0).all(axis=0)
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data) & valid
        if bad.any():
            raise DataError(path, f"contains {int(bad.sum())} NaN or inf value(s) in valid pixels")
    data[:, ~valid] = 0
    return data, valid


def overview_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) of a raster scaled down so that its longer side is at most ``max_side`` (never enlarged)."""
    factor = min(1.0, max_side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def check_label_values(label: np.ndarray, path: str | os.PathLike) -> None:
    """Raise DataError unless every value of ``label`` is a class value (0..8) or padding (255)."""
    if label.dtype.kind == "f" and not np.isfinite(label).all():
        raise DataError(path, "label contains NaN or inf values")
    present = np.unique(label)
    bad = [int(v) for v in present if int(v) not in VALID_LABEL_VALUES or v != int(v)]
    if bad:
        raise DataError(path, f"label values {bad[:10]} outside 0..8 and 255")


def read_label(path: str | os.PathLike, window: Window | None = None) -> np.ndarray:
    """Read a 1-band label raster as an (H, W) uint8 array, checking its values.

    Raises:
        DataError: unreadable file, more than one band, or values outside 0..8 and 255.
    """
    label = read_raster(path, bands=1, window=window)[0]
    check_label_values(label, path)
    return label.astype(np.uint8, copy=False)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    A crash inside the block leaves any earlier file at ``path`` untouched and no partial file; a
    process killed outright leaves one, which the next run's output check removes
    (:func:`datamodules.output_safety.remove_leftovers`). The temporary name keeps the suffix so
    that GDAL picks the right driver.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_file(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        # GDAL may write a sidecar (e.g. .aux.xml) for the temporary name.
        for sidecar in tmp.parent.glob(tmp.name + ".*"):
            sidecar.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, command: str) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; it becomes ``path`` only if the block succeeds.

    ``path`` may only be replaced if it is a folder this project wrote as a whole before (its
    mark lists every file it holds; see :mod:`datamodules.output_safety`): checked on entry and again
    just before the swap. The new folder gets such a mark. A failure inside the block removes the
    temporary folder and leaves an earlier ``path`` as it was; on success the earlier ``path`` is
    moved aside, replaced, then deleted.

    Raises:
        OutputRefusedError: ``path`` holds anything this project did not write there.
    """
    path = Path(path)
    output = [Output(path, "replaced_folder")]
    check_outputs(command, output)
    tmp, old = partial_folder(path), partial_folder(path, "old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        write_folder_mark(tmp, command, files=sorted(p.name for p in tmp.iterdir()))
        check_outputs(command, output, claim=False)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def geotiff_profile(
    height: int,
    width: int,
    count: int,
    dtype: str,
    *,
    crs: CRS | str | None = None,
    transform: Affine | None = None,
    nodata: float | None = None,
    tiled: bool = True,
) -> dict[str, Any]:
    """Creation options of a deflate-compressed GeoTIFF, internally tiled 256 x 256 when large enough.

    Args:
        height: rows.
        width: columns.
        count: bands.
        dtype: pixel type, e.g. ``uint8``.
        crs: coordinate reference system to copy from the source (None: not georeferenced).
        transform: affine geotransform, copied as it is (rotated ones included; None: identity grid).
        nodata: optional no-data value.
        tiled: write internal 256x256 tiles (faster windowed reads of large maps).
    """
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "compress": "deflate",
    }
    if tiled and height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    return profile


@contextlib.contextmanager
def open_geotiff_writer(path: str | os.PathLike, profile: dict[str, Any], colormap: bool = False) -> Iterator[Any]:
    """Open a GeoTIFF for (windowed) writing under a temporary name; it replaces ``path`` on success only.

    Args:
        path: destination; parent folders are created.
        profile: creation options (see :func:`geotiff_profile`).
        colormap: attach the land-cover class colour map to band 1 (uint8 labels).

    Yields:
        The open rasterio dataset; write whole arrays or windows into it.
    """
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            if colormap:
                dst.write_colormap(1, rasterio_colormap())
            yield dst


def write_raster(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    crs: CRS | str | None = None,
    transform: Affine | None = None,
    colormap: bool = False,
    nodata: float | None = None,
    tiled: bool = True,
    extra_profile: dict[str, Any] | None = None,
) -> Path:
    """Write a (bands, H, W) or (H, W) array as a compressed GeoTIFF, atomically.

    Args:
        path: destination; parent folders are created.
        data: the pixels; its dtype becomes the file's dtype.
        crs: coordinate reference system to copy from the source tile (None: not georeferenced).
        transform: affine geotransform, rotated ones included (None: identity pixel grid).
        colormap: attach the land-cover class colour map to band 1 (uint8 labels).
        nodata: optional no-data value.
        tiled: write internal 256x256 tiles (faster windowed reads of large maps).
        extra_profile: further creation options.

    Returns:
        The written path.
    """
    array = data[None] if data.ndim == 2 else data
    count, height, width = array.shape
    profile = geotiff_profile(
        height, width, count, array.dtype.name, crs=crs, transform=transform, nodata=nodata, tiled=tiled
    )
    profile.update(extra_profile or {})
    with open_geotiff_writer(path, profile, colormap=colormap) as dst:
        dst.write(array)
    return Path(path)


def write_label_like(path: str | os.PathLike, label: np.ndarray, reference: RasterInfo) -> Path:
    """Write an (H, W) uint8 label with the CRS, transform and size of a reference tile."""
    if label.shape != reference.shape:
        raise ValueError(f"label shape {label.shape} does not match {reference.path} {reference.shape}")
    return write_raster(path, label.astype(np.uint8), crs=reference.crs, transform=reference.transform, colormap=True)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W) or (H, W, 3) uint8 image as PNG, atomically."""
    array = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
    count, height, width = array.shape
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", driver="PNG", width=width, height=height, count=count, dtype="uint8") as dst:
            dst.write(array.astype(np.uint8))
    return Path(path)
