"""``python cli.py convert``: the 8-bit version of a SAR scene, written block by block with its georeferencing.

The scene is converted with :class:`~datamodules.sar_scaling.SARScaling` (one percentile for the
whole scene, from an overview), in blocks, so memory depends on the block size, not on the scene.
The output keeps the CRS and transform; the scene's own nodata pixels are 0 and stay marked invalid
in an internal mask band (not by a nodata value: exact zeros are valid SAR pixels).
"""

from __future__ import annotations

from pathlib import Path

from rasterio.windows import Window
from tqdm import tqdm

from datamodules.rasters import DataError, geotiff_profile, open_geotiff_writer, raster_info
from datamodules.sar_scaling import SARScaling, ScaledSAR


def convert(
    input: str,
    output: str,
    scaling: SARScaling = SARScaling(source="amplitude"),
    block: int = 2048,
    progress: bool = True,
) -> Path:
    """Write the 8-bit amplitude version of a single-band SAR scene, as OpenEarthMap-SAR's tiles are.

    Args:
        input: the SAR scene: float32 linear amplitude, intensity or dB, or integer (uint16) amplitude.
        output: the uint8 GeoTIFF to write (tiled, deflate-compressed, replaced only once complete).
        scaling: what the scene holds (``--scaling.source amplitude|intensity|db``) and the percentile
            that becomes 255.
        block: side of the square blocks read and written at a time; bounds the memory.
        progress: show a progress bar over blocks.

    Returns:
        The written file.

    Raises:
        DataError: naming the file: unreadable, not 1 band, already 8-bit, values the scaling would
            misread, or the output would replace the input.
        ValueError: a block that is not positive.
    """
    if block <= 0:
        raise ValueError(f"block must be positive, got {block}")
    if raster_info(input).dtype == "uint8":
        raise DataError(input, "is 8-bit already: nothing to convert")
    scene = ScaledSAR(input, scaling)
    if Path(output).resolve() == scene.path.resolve():
        raise DataError(scene.path, "output would overwrite the scene; choose another --output")
    info = scene.info
    profile = geotiff_profile(info.height, info.width, 1, "uint8", crs=info.crs)
    profile["transform"] = info.transform  # copied as it is, rotated grids included
    windows = [
        Window(left, top, min(block, info.width - left), min(block, info.height - top))
        for top in range(0, info.height, block)
        for left in range(0, info.width, block)
    ]
    with open_geotiff_writer(output, profile) as dst:
        dst.set_band_description(1, f"SAR amplitude, 8-bit ({scaling.source}, 255 at p{scaling.high_percentile:g})")
        for window in tqdm(windows, desc=f"convert {scene.path.name}", unit="block", disable=not progress):
            data, valid = scene.read(window=window)
            dst.write(data[0], 1, window=window)
            if info.masked:
                dst.write_mask(valid.astype("uint8") * 255, window=window)
    return Path(output)
