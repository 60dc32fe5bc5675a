"""SAR values to the 8-bit amplitude the models were trained on: one conversion for fit, predict, map, submit, convert.

The models learn from OpenEarthMap-SAR, whose SAR tiles are 8-bit GEC amplitude as distributed
(Umbra's relative 8-bit scaling). Other products arrive as float32 linear amplitude, intensity
(power) or dB, or as uint16 amplitude counts; fed as they are, the 8-bit normalisation misreads
them without a word. This module checks a raster against that contract and converts it:

* ``uint8``: the raster must already be 8-bit; any other type stops with an error that says what
  was found and which ``source`` converts it;
* ``amplitude`` (float or integer, e.g. uint16 counts), ``intensity`` (amplitude squared) and
  ``db`` (10 log10 intensity = 20 log10 amplitude): turned into linear amplitude, then stretched
  linearly from 0 to the ``high_percentile`` of the valid pixels, which becomes 255.

The percentile comes from the whole tile, or for a scene from an overview of at most
``sample_side`` pixels a side (a uniform nearest-neighbour sample), always excluding the raster's
own nodata (its nodata value, mask band or alpha band). Lightning-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from rasterio.windows import Window

from datamodules.rasters import DataError, RasterInfo, overview_shape, raster_info, read_masked

ScalingSource = Literal["uint8", "amplitude", "intensity", "db"]
OPTION_HINT = "(map, submit, convert: --scaling.source {0}; fit, predict: --data.init_args.scaling.source {0})"


@dataclass(frozen=True)
class SARScaling:
    """How a SAR raster's values become the 8-bit amplitude of OpenEarthMap-SAR (see the module docstring)."""

    source: ScalingSource = "uint8"
    """What the raster holds: ``uint8`` (already 8-bit, the default), ``amplitude`` (linear, float or
    integer such as uint16), ``intensity`` (linear power) or ``db``."""
    high_percentile: float = 99.99
    """Percentile of the valid amplitudes that becomes 255 (the real Umbra 8-bit sample reaches 232 at
    its 99.99th percentile and 255 at its 99.999th)."""
    sample_side: int = 2048
    """Longest side of the overview a scene's percentile is computed on."""

    def __post_init__(self) -> None:
        if not 0 < self.high_percentile <= 100:
            raise ValueError(f"high_percentile must be in (0, 100], got {self.high_percentile}")
        if self.sample_side < 1:
            raise ValueError(f"sample_side must be positive, got {self.sample_side}")

    def check(self, path: str | os.PathLike, dtype: str, sample: np.ndarray, valid: np.ndarray) -> None:
        """Refuse a raster this setting would misread, saying what was found and which source reads it.

        Raises:
            DataError: naming the file, its type and value range, and the option that converts it.
        """
        values = sample[..., valid] if valid.shape == sample.shape[-2:] else sample
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        found = f"holds {dtype} values {low:.4g}..{high:.4g}"
        if self.source == "uint8":
            if dtype == "uint8":
                return
            guess = guess_source(dtype, low, high)
            raise DataError(
                path,
                f"{found}, but the models take 8-bit SAR amplitude (0..255, as OpenEarthMap-SAR distributes it); "
                f"it looks like {guess}: convert it with scaling source {guess} {OPTION_HINT.format(guess)}, "
                "or write an 8-bit copy with `python cli.py convert`",
            )
        if dtype == "uint8":
            hint = OPTION_HINT.format("uint8")
            raise DataError(path, f"{found}: already 8-bit, read it with scaling source uint8 {hint}")
        if self.source in ("amplitude", "intensity") and low < 0:
            raise DataError(path, f"{found}: a linear {self.source} is never negative; dB? {OPTION_HINT.format('db')}")

    def amplitude(self, values: np.ndarray) -> np.ndarray:
        """Linear amplitude (float64) of raw values of this source."""
        values = values.astype(np.float64)
        if self.source == "intensity":
            return np.sqrt(values)
        if self.source == "db":
            return np.power(10.0, values / 20.0)
        return values

    def fit(self, path: str | os.PathLike, sample: np.ndarray, valid: np.ndarray) -> float:
        """The amplitude that becomes 255: the ``high_percentile`` of the valid pixels of ``sample``.

        Raises:
            DataError: no valid pixel, or only zeros.
        """
        amplitudes = self.amplitude(sample[..., valid])
        if amplitudes.size == 0:
            raise DataError(path, "no valid pixel to compute the SAR scaling on (all nodata)")
        high = float(np.percentile(amplitudes, self.high_percentile))
        if not high > 0:
            raise DataError(
                path, f"the {self.high_percentile}th percentile of its amplitudes is {high}: nothing to scale"
            )
        return high

    def to_uint8(self, values: np.ndarray, high: float) -> np.ndarray:
        """Raw values of this source to 8-bit amplitude: 0 stays 0, ``high`` and above become 255."""
        scaled = np.rint(self.amplitude(values) * (255.0 / high))
        return np.clip(scaled, 0, 255).astype(np.uint8)


def guess_source(dtype: str, low: float, high: float) -> ScalingSource:
    """The likeliest source of values of this type and range (for the error message only)."""
    if dtype == "uint8":
        return "uint8"
    if low < 0:
        return "db"
    return "amplitude"


class ScaledSAR:
    """A single-band SAR raster read as 8-bit amplitude, window by window, with one scaling for all of it.

    The contract check and the percentile use an overview of at most ``scaling.sample_side``
    pixels a side (the whole raster when it is smaller), excluding the raster's own nodata.

    Args:
        path: the raster (1 band).
        scaling: how its values become 8-bit.

    Raises:
        DataError: naming the file: unreadable, not 1 band, a type or range the scaling would
            misread, or nothing valid to scale.
    """

    def __init__(self, path: str | os.PathLike, scaling: SARScaling) -> None:
        self.path = Path(path)
        self.scaling = scaling
        self.info: RasterInfo = raster_info(self.path)
        if self.info.count != 1:
            raise DataError(self.path, f"has {self.info.count} bands; a SAR raster has 1")
        self.high: float | None = None
        if scaling.source == "uint8" and self.info.dtype == "uint8":
            return  # as the models take it: nothing to check on the pixels, nothing to fit
        shape = overview_shape(self.info.height, self.info.width, scaling.sample_side)
        sample, valid = read_masked(self.path, out_shape=shape)
        scaling.check(self.path, self.info.dtype, sample[0], valid)
        self.high = scaling.fit(self.path, sample[0], valid)

    def read(
        self, window: Window | None = None, out_shape: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """((1, h, w) uint8 amplitude, (h, w) bool valid) of a window (None: the whole raster); invalid pixels 0.

        ``out_shape`` reads it at another size (nearest neighbour), e.g. an overview.
        """
        data, valid = read_masked(self.path, bands=1, window=window, out_shape=out_shape)
        if self.high is None:
            return data.astype(np.uint8, copy=False), valid
        return _blank(self.scaling.to_uint8(data, self.high), valid), valid


def read_sar(path: str | os.PathLike, scaling: SARScaling) -> tuple[np.ndarray, np.ndarray]:
    """A whole SAR tile as ((1, H, W) uint8 amplitude, (H, W) bool valid), its scaling fitted on the tile itself.

    Raises:
        DataError: as :class:`ScaledSAR`.
    """
    data, valid = read_masked(path, bands=1)
    dtype = data.dtype.name
    if scaling.source == "uint8" and dtype == "uint8":
        return data, valid
    scaling.check(path, dtype, data[0], valid)
    return _blank(scaling.to_uint8(data, scaling.fit(path, data[0], valid)), valid), valid


def _blank(scaled: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Invalid pixels 0 (their raw 0 is not amplitude 0 in every source: 0 dB is amplitude 1)."""
    scaled[:, ~valid] = 0
    return scaled
