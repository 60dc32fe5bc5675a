"""The SAR input contract: float (linear, dB), uint16 and nodata scenes refused or converted, and the GSD warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from datamodules.datasets import Tile, TileDataset
from datamodules.pixel_size import pixel_size_m, warn_if_far_from_training_gsd
from datamodules.rasters import DataError, raster_info, read_raster, write_raster
from datamodules.sar_convert import convert
from datamodules.sar_scaling import SARScaling, ScaledSAR, read_sar

UTM = "EPSG:32654"


def rotated(gsd: float) -> Affine:
    """A rotated north-up-free grid of ``gsd`` metres (as OEM-SAR's)."""
    angle = np.radians(20)
    c, s = gsd * np.cos(angle), gsd * np.sin(angle)
    return Affine(c, s, 4e5, s, -c, 3.9e6)


def amplitude_scene(seed: int = 0, shape: tuple[int, int] = (96, 80)) -> np.ndarray:
    """Speckle-like linear amplitude (Rayleigh), float32, a few bright points."""
    rng = np.random.default_rng(seed)
    amplitude = rng.rayleigh(0.05, shape).astype(np.float32)
    amplitude[rng.integers(0, shape[0], 5), rng.integers(0, shape[1], 5)] = 3.0
    return amplitude


def test_float_linear_amplitude_is_refused_by_default_and_stretched_when_asked(tmp_path: Path) -> None:
    amplitude = amplitude_scene()
    write_raster(tmp_path / "linear.tif", amplitude, crs=UTM, transform=rotated(0.3))
    with pytest.raises(DataError, match=r"linear\.tif: holds float32 values 0.*amplitude.*--scaling\.source amplitude"):
        read_sar(tmp_path / "linear.tif", SARScaling())
    scaled, valid = read_sar(tmp_path / "linear.tif", SARScaling(source="amplitude", high_percentile=99.0))
    assert scaled.dtype == np.uint8 and valid.all()
    high = np.percentile(amplitude.astype(np.float64), 99.0)
    np.testing.assert_array_equal(scaled[0], np.clip(np.rint(amplitude * (255 / high)), 0, 255))
    assert (scaled == 255).mean() == pytest.approx(0.01, abs=0.002)  # 1 % saturate, as asked


def test_db_and_intensity_give_the_8_bit_image_of_their_amplitude(tmp_path: Path) -> None:
    amplitude = amplitude_scene(1) + 1e-3
    write_raster(tmp_path / "a.tif", amplitude)
    write_raster(tmp_path / "db.tif", (20 * np.log10(amplitude)).astype(np.float32))
    write_raster(tmp_path / "i.tif", (amplitude.astype(np.float64) ** 2).astype(np.float32))
    with pytest.raises(DataError, match=r"db\.tif: holds float32 values -.*looks like db.*--scaling\.source db"):
        read_sar(tmp_path / "db.tif", SARScaling())
    with pytest.raises(DataError, match=r"db\.tif: .*never negative; dB\?"):
        read_sar(tmp_path / "db.tif", SARScaling(source="amplitude"))
    reference = read_sar(tmp_path / "a.tif", SARScaling(source="amplitude"))[0].astype(int)
    for name, source in (("db.tif", "db"), ("i.tif", "intensity")):
        scaled = read_sar(tmp_path / name, SARScaling(source=source))[0].astype(int)
        assert np.abs(scaled - reference).max() <= 1 and (scaled == reference).mean() > 0.99  # float32 rounding


def test_uint16_counts_are_refused_by_default_and_read_as_amplitude(tmp_path: Path) -> None:
    counts = (amplitude_scene(2) * 2000).astype(np.uint16)
    write_raster(tmp_path / "u16.tif", counts)
    with pytest.raises(
        DataError, match=r"u16\.tif: holds uint16 values .*--scaling\.source amplitude.*cli\.py convert"
    ):
        read_sar(tmp_path / "u16.tif", SARScaling())
    scaled = read_sar(tmp_path / "u16.tif", SARScaling(source="amplitude"))[0]
    assert scaled.dtype == np.uint8 and 0 < scaled.mean() < 128
    write_raster(tmp_path / "u8.tif", scaled[0])
    with pytest.raises(DataError, match=r"u8\.tif: holds uint8 .* already 8-bit"):
        read_sar(tmp_path / "u8.tif", SARScaling(source="amplitude"))


@pytest.mark.parametrize("nodata", [-9999.0, float("nan")])
def test_the_scenes_own_nodata_is_excluded_from_the_statistics_and_reads_0(tmp_path: Path, nodata: float) -> None:
    amplitude = amplitude_scene(3)
    tagged = amplitude.copy()
    tagged[:30, :20] = nodata
    write_raster(tmp_path / "plain.tif", amplitude[30:])
    write_raster(tmp_path / "tagged.tif", tagged, nodata=nodata)
    assert raster_info(tmp_path / "tagged.tif").masked and not raster_info(tmp_path / "plain.tif").masked
    scaling = SARScaling(source="amplitude", high_percentile=100.0)
    scaled, valid = read_sar(tmp_path / "tagged.tif", scaling)
    assert not valid[:30, :20].any() and valid[30:].all() and (scaled[0][~valid] == 0).all()
    # The percentile is that of the valid pixels only: scaled with the maximum of those.
    expected = np.clip(np.rint(amplitude * (255 / amplitude[valid].astype(np.float64).max())), 0, 255)
    np.testing.assert_array_equal(scaled[0][valid], expected[valid])


def test_a_large_scene_takes_its_percentile_from_an_overview(tmp_path: Path) -> None:
    amplitude = amplitude_scene(4, (512, 512))
    write_raster(tmp_path / "big.tif", amplitude)
    full = np.percentile(amplitude.astype(np.float64), 99.0)
    scene = ScaledSAR(tmp_path / "big.tif", SARScaling(source="amplitude", high_percentile=99.0, sample_side=128))
    assert scene.high == pytest.approx(full, rel=0.05) and scene.high != full  # a 1/16 sample, close


def test_a_training_tile_of_another_type_names_the_option_of_the_datamodule(tmp_path: Path) -> None:
    write_raster(tmp_path / "tile.tif", amplitude_scene(5))
    dataset = TileDataset([Tile("tile.tif", tmp_path / "tile.tif", None, 1)], scaling=SARScaling())
    with pytest.raises(DataError, match=r"tile\.tif: holds float32 .*--data\.init_args\.scaling\.source amplitude"):
        dataset[0]
    converted = TileDataset([Tile("tile.tif", tmp_path / "tile.tif", None, 1)], scaling=SARScaling("amplitude"))
    assert converted[0]["image"].dtype.is_floating_point is False


def test_convert_writes_the_8_bit_scene_blockwise_with_its_georeferencing_and_mask(tmp_path: Path) -> None:
    db = (20 * np.log10(amplitude_scene(6, (150, 130)) + 1e-3)).astype(np.float32)
    db[:40, :50] = -9999.0
    write_raster(tmp_path / "scene_db.tif", db, crs=UTM, transform=rotated(0.4), nodata=-9999.0)
    scaling = SARScaling(source="db")
    out = convert(str(tmp_path / "scene_db.tif"), str(tmp_path / "scene_8bit.tif"), scaling, block=64, progress=False)
    with rasterio.open(tmp_path / "scene_db.tif") as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.shape, dst.dtypes) == (src.crs, src.transform, src.shape, ("uint8",))
        assert dst.nodata is None  # exact zeros are valid SAR: the nodata is a mask, not a value
        assert not dst.read_masks(1)[:40, :50].any() and dst.read_masks(1)[40:].all()
    whole, _ = ScaledSAR(tmp_path / "scene_db.tif", scaling).read()
    np.testing.assert_array_equal(read_raster(out)[0], whole[0])  # blocks share one scaling
    with pytest.raises(DataError, match=r"scene_8bit\.tif: is 8-bit already"):
        convert(str(out), str(tmp_path / "again.tif"), progress=False)
    with pytest.raises(DataError, match=r"output would overwrite the scene"):
        convert(str(tmp_path / "scene_db.tif"), str(tmp_path / "scene_db.tif"), scaling, progress=False)


def test_pixel_size_of_rotated_projected_and_geographic_grids(tmp_path: Path) -> None:
    write_raster(tmp_path / "utm.tif", np.zeros((8, 8), np.uint8), crs=UTM, transform=rotated(0.3))
    assert pixel_size_m(raster_info(tmp_path / "utm.tif")) == pytest.approx((0.3, 0.3))
    umbra_like = Affine(-0.143, -0.5768, 337934.5, -0.5768, 0.143, 7840518.5)  # the real Umbra sample's grid
    write_raster(tmp_path / "umbra.tif", np.zeros((8, 8), np.uint8), crs="EPSG:32759", transform=umbra_like)
    assert pixel_size_m(raster_info(tmp_path / "umbra.tif")) == pytest.approx((0.594, 0.594), abs=1e-3)
    degrees = Affine(1e-5, 0, 139.0, 0, -1e-5, 60.0)  # at 60 degrees north a degree of longitude halves
    write_raster(tmp_path / "geo.tif", np.zeros((8, 8), np.uint8), crs="EPSG:4326", transform=degrees)
    column, row = pixel_size_m(raster_info(tmp_path / "geo.tif"))
    assert column == pytest.approx(0.557, rel=0.01) and row == pytest.approx(1.113, rel=0.01)
    write_raster(tmp_path / "bare.tif", np.zeros((8, 8), np.uint8))
    assert pixel_size_m(raster_info(tmp_path / "bare.tif")) is None


def test_a_scene_far_outside_the_training_gsd_gets_a_warning_naming_both(tmp_path: Path) -> None:
    for name, gsd in (("sentinel.tif", 10.0), ("fine.tif", 0.05), ("ok.tif", 0.594)):
        write_raster(tmp_path / name, np.zeros((8, 8), np.uint8), crs=UTM, transform=rotated(gsd))
    with pytest.warns(UserWarning, match=r"sentinel\.tif: pixel size 10 x 10 m lies far outside the 0.15-0.5 m"):
        assert warn_if_far_from_training_gsd(raster_info(tmp_path / "sentinel.tif"), (0.15, 0.5))
    with pytest.warns(UserWarning, match=r"fine\.tif: pixel size 0.05 x 0.05 m"):
        warn_if_far_from_training_gsd(raster_info(tmp_path / "fine.tif"), (0.15, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_far_from_training_gsd(raster_info(tmp_path / "ok.tif"), (0.15, 0.5))


UMBRA_CROPS = sorted((Path(__file__).resolve().parents[1] / "data").glob("*umbra*.tif*"))


@pytest.mark.skipif(not UMBRA_CROPS, reason="no crop of the real Umbra sample under tests/data")
def test_real_umbra_amplitude_delivered_as_float_or_db_converts_back_to_its_8_bit_image(tmp_path: Path) -> None:
    info = raster_info(UMBRA_CROPS[0])
    original = read_raster(UMBRA_CROPS[0])[0]
    amplitude = original.astype(np.float32) * 0.0123  # as a float32 linear-amplitude product would hold it
    db = np.where(original > 0, 20 * np.log10(np.maximum(amplitude, 1e-12)), -9999.0).astype(np.float32)
    write_raster(tmp_path / "linear.tif", amplitude, crs=info.crs, transform=info.transform)
    write_raster(tmp_path / "db.tif", db, crs=info.crs, transform=info.transform, nodata=-9999.0)
    scaling = SARScaling(source="amplitude", high_percentile=99.99)
    scaled = read_sar(tmp_path / "linear.tif", scaling)[0][0].astype(int)
    top = np.percentile(original.astype(np.float64), 99.99)  # the stretch is linear: one factor 255 / top
    expected = np.clip(np.rint(original * (255 / top)), 0, 255)
    # float32 amplitudes move a few values that sit on a rounding tie by one grey level, never more
    assert np.abs(scaled - expected).max() <= 1 and (scaled == expected).mean() > 0.99
    from_db, valid = read_sar(tmp_path / "db.tif", SARScaling(source="db"))
    assert (valid == (original > 0)).all() and (from_db[0][~valid] == 0).all()
    assert np.corrcoef(from_db[0][valid], original[valid])[0, 1] > 0.999
