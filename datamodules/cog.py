"""Cloud-Optimized GeoTIFF output: written block by block, internal overviews per band, names a GIS shows.

A COG is the GeoTIFF layout QGIS and web viewers read fastest: tiles, then overviews stored from the
smallest, so a zoomed-out view reads only the overview it shows. GDAL's COG driver writes that
layout, but only as a copy of a finished raster and with one overview resampling for all bands. So
the writer (:func:`open_cog_writer`) works in three steps, memory bounded by GDAL's block cache:

1. blocks are written into temporary tiled GeoTIFFs, one per overview resampling (classes take
   ``mode`` or ``nearest``, probabilities ``average``), in a folder beside the output;
2. each gets its internal overviews (factors 4, 8, ... by default, until the smallest fits one tile);
3. a VRT stacks their bands in order, with each band's description, category names (what
   ``gdalinfo`` and QGIS list: "8: Building"), colour table and the nodata value, and the COG
   driver copies it, overviews included, to a temporary name that replaces the output when done.

GeoTIFF has no tag for category names, so GDAL keeps them in the ``<output>.aux.xml`` sidecar it
writes beside the map (descriptions and the colour table are inside the TIFF too).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from datamodules.classes import CLASSES, rasterio_colormap
from datamodules.output_safety import partial_file
from datamodules.rasters import atomic_output

OverviewResampling = Literal["nearest", "mode", "average"]
TILE = 256
FIRST_OVERVIEW = 4
"""Factor of the largest overview. Factor 2 alone holds a quarter of the map's pixels and compresses
worse than the map, so it costs about 29 % of the file (BENCHMARKS.md) for views at 1/2-1/4 scale, which then read
the full resolution instead (4-16 map pixels per screen pixel)."""
"""Tile side of the COG and of its temporary parts (pixels)."""


@dataclass(frozen=True)
class BandSpec:
    """One band of a COG: what GIS tools show for it and how its overviews are made."""

    description: str
    """The band's name (``gdalinfo`` Description, QGIS band name)."""
    resampling: OverviewResampling = "nearest"
    """Overview resampling: ``mode`` or ``nearest`` for classes, ``average`` for probabilities."""
    categories: tuple[str, ...] = ()
    """Category name of each value 0, 1, ... (class maps)."""
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    """Colour of each value as (r, g, b, a) (class maps)."""


def class_band(description: str = "land-cover class", resampling: OverviewResampling = "mode") -> BandSpec:
    """The band of a class map: the class names as categories, the class colours, ``mode`` overviews."""
    return BandSpec(description, resampling, tuple(c.name for c in CLASSES), rasterio_colormap())


def probability_bands() -> tuple[BandSpec, ...]:
    """The bands of a soft map, one per class, floor(255 p), ``average`` overviews."""
    return tuple(BandSpec(f"p({c.name}), floor(255 p)", "average") for c in CLASSES)


@contextlib.contextmanager
def _parts_folder(path: Path) -> Iterator[Path]:
    """A folder for the COG's parts beside ``path``, removed afterwards; named as the output rule's
    leftovers (``.<stem>.partial-<host>-<pid>.parts``), so a re-run removes it after a kill."""
    folder = partial_file(path).with_suffix(".parts")
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def overview_factors(height: int, width: int, tile: int = TILE, first: int = FIRST_OVERVIEW) -> list[int]:
    """Overview factors ``first``, 2 ``first``, ... until the smallest overview fits in one tile; none for a
    raster whose first overview would be one tile's size or less.

    Raises:
        ValueError: ``first`` not a power of two of at least 2.
    """
    if first < 2 or first & (first - 1):
        raise ValueError(f"the first overview factor must be a power of two >= 2, got {first}")
    factors: list[int] = []
    factor = first
    while max(height, width) / (factor // 2) > tile:
        factors.append(factor)
        factor *= 2
    return factors


class COGWriter:
    """The open temporary parts of a COG being written; :meth:`write` puts a window of one band in place."""

    def __init__(self, parts: list[tuple[object, list[int]]]) -> None:
        self._where = {band: (dataset, index + 1) for dataset, bands in parts for index, band in enumerate(bands)}

    def write(self, array: np.ndarray, band: int, window: Window | None = None) -> None:
        """Write an (h, w) array into band ``band`` (1-based) at ``window`` (None: the whole band)."""
        dataset, index = self._where[band]
        dataset.write(array, index, window=window)


def _vrt(
    size: tuple[int, int],
    dtype: str,
    crs: CRS | None,
    transform: Affine,
    bands: Sequence[BandSpec],
    sources: dict[int, tuple[Path, int]],
    nodata: float | None,
) -> str:
    """XML of a VRT that stacks the parts' bands in order, with their names, colours and nodata."""
    height, width = size
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    if crs is not None:
        ET.SubElement(root, "SRS").text = crs.to_wkt()
    if crs is not None or transform != Affine.identity():
        ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in transform.to_gdal())
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32"}[dtype]
    for number, spec in enumerate(bands, start=1):
        band = ET.SubElement(root, "VRTRasterBand", dataType=gdal_type, band=str(number))
        ET.SubElement(band, "Description").text = spec.description
        if nodata is not None:
            ET.SubElement(band, "NoDataValue").text = repr(float(nodata))
        if spec.colormap:
            ET.SubElement(band, "ColorInterp").text = "Palette"
            table = ET.SubElement(band, "ColorTable")
            for value in range(max(spec.colormap) + 1):
                r, g, b, a = spec.colormap.get(value, (0, 0, 0, 0))
                ET.SubElement(table, "Entry", c1=str(r), c2=str(g), c3=str(b), c4=str(a))
        if spec.categories:
            names = ET.SubElement(band, "CategoryNames")
            for name in spec.categories:
                ET.SubElement(names, "Category").text = name
        path, index = sources[number]
        source = ET.SubElement(band, "SimpleSource")
        ET.SubElement(source, "SourceFilename", relativeToVRT="1").text = path.name
        ET.SubElement(source, "SourceBand").text = str(index)
    return ET.tostring(root, encoding="unicode")


@contextlib.contextmanager
def open_cog_writer(
    path: str | os.PathLike,
    *,
    height: int,
    width: int,
    dtype: str,
    bands: Sequence[BandSpec],
    crs: CRS | str | None = None,
    transform: Affine | None = None,
    nodata: float | None = None,
    overviews: bool = True,
    first_overview: int = FIRST_OVERVIEW,
) -> Iterator[COGWriter]:
    """Write a COG band by band and window by window; it replaces ``path`` (and its ``.aux.xml``) only on success.

    Args:
        path: the COG to write; parent folders are created.
        height: rows.
        width: columns.
        dtype: pixel type of every band, e.g. ``uint8``.
        bands: one :class:`BandSpec` per band, in order.
        crs: coordinate reference system (None: not georeferenced).
        transform: geotransform, copied as it is (rotated ones included; None: the identity grid).
        nodata: the value of pixels without data (every band); GIS tools show them transparent and
            overviews leave them out.
        overviews: build internal overviews (each band with its own resampling).
        first_overview: factor of the largest overview (see :data:`FIRST_OVERVIEW`).

    Yields:
        A :class:`COGWriter`; write every pixel of every band into it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    crs = CRS.from_user_input(crs) if crs is not None else None
    transform = Affine.identity() if transform is None else transform
    groups: dict[str, list[int]] = {}
    for number, spec in enumerate(bands, start=1):
        groups.setdefault(spec.resampling, []).append(number)
    factors = overview_factors(height, width, first=first_overview) if overviews else []
    with (
        _parts_folder(path) as folder,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        parts = {resampling: Path(folder) / f"{resampling}.tif" for resampling in groups}
        profile = {"driver": "GTiff", "width": width, "height": height, "dtype": dtype, "compress": "deflate"}
        profile.update(tiled=True, blockxsize=TILE, blockysize=TILE, nodata=nodata, crs=crs, transform=transform)
        with contextlib.ExitStack() as stack:
            opened = [
                (stack.enter_context(rasterio.open(parts[r], "w", count=len(numbers), **profile)), numbers)
                for r, numbers in groups.items()
            ]
            yield COGWriter(opened)
        for resampling, part in parts.items():
            if factors:
                with rasterio.open(part, "r+") as dataset:
                    dataset.build_overviews(factors, Resampling[resampling])
        sources = {n: (parts[r], i + 1) for r, numbers in groups.items() for i, n in enumerate(numbers)}
        vrt = Path(folder) / "stack.vrt"
        vrt.write_text(_vrt((height, width), dtype, crs, transform, bands, sources, nodata))
        with atomic_output(path) as tmp:
            rasterio.shutil.copy(
                vrt, tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=TILE,
                OVERVIEWS="FORCE_USE_EXISTING" if factors else "NONE",
            )  # fmt: skip
            # GDAL keeps what a TIFF cannot hold (category names) in a sidecar named after the file.
            sidecar = tmp.with_name(tmp.name + ".aux.xml")
            if sidecar.exists():
                os.replace(sidecar, path.with_name(path.name + ".aux.xml"))


def write_cog(
    path: str | os.PathLike,
    data: np.ndarray,
    bands: Sequence[BandSpec],
    *,
    crs: CRS | str | None = None,
    transform: Affine | None = None,
    nodata: float | None = None,
    overviews: bool = True,
    first_overview: int = FIRST_OVERVIEW,
) -> Path:
    """Write a whole (bands, H, W) or (H, W) array as a COG, atomically (see :func:`open_cog_writer`)."""
    array = data[None] if data.ndim == 2 else data
    if len(bands) != array.shape[0]:
        raise ValueError(f"{path}: {len(bands)} band specs for {array.shape[0]} band(s)")
    with open_cog_writer(
        path, height=array.shape[1], width=array.shape[2], dtype=array.dtype.name, bands=bands,
        crs=crs, transform=transform, nodata=nodata, overviews=overviews, first_overview=first_overview,
    ) as writer:  # fmt: skip
        for number, band in enumerate(array, start=1):
            writer.write(band, number)
    return Path(path)
