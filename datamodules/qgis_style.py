"""A QGIS layer style (.qml) for class maps: the classes as a paletted renderer with their names and colours.

QGIS applies ``<map>.qml`` by itself when it opens ``<map>.tif`` from the same folder, so the map shows
"Building" in red in the layer panel without any set-up. Written from the one class table.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from datamodules.classes import BACKGROUND, CLASSES
from datamodules.rasters import atomic_output


def qgis_style_xml(band: int = 1, skip: tuple[int, ...] = (BACKGROUND,)) -> str:
    """The .qml text: a paletted renderer of ``band`` listing every class except the values in ``skip``.

    Args:
        band: the band holding the classes.
        skip: values not listed (class 0 is the maps' nodata value: shown transparent, not as a class).
    """
    root = ET.Element("qgis", version="3.28.0", styleCategories="Symbology")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(
        pipe, "rasterrenderer", type="paletted", band=str(band), opacity="1", alphaBand="-1", nodataColor=""
    )
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for cls in CLASSES:
        if cls.value not in skip:
            ET.SubElement(palette, "paletteEntry", value=str(cls.value), color=cls.colour, alpha="255", label=cls.name)
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def write_qgis_style(raster: str | os.PathLike, band: int = 1) -> Path:
    """Write ``<raster without suffix>.qml`` beside ``raster`` (atomically) and return its path."""
    path = Path(raster).with_suffix(".qml")
    with atomic_output(path) as tmp:
        tmp.write_text(qgis_style_xml(band))
    return path
