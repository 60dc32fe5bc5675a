"""The contest submission: PNG names and values, the zip, the class-0-free ensemble, no-data, errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from datamodules.nodata import NoDataRule
from datamodules.output_safety import OutputRefusedError
from datamodules.rasters import DataError, read_raster, write_raster
from sar_inference.engine import probs_to_label, tta_probs
from sar_inference.predictor import EnsembleSettings, load_predictor
from sar_inference.settings import InferenceOverrides
from sar_inference.submission import submit
from sar_landcover.commands import main as cli_main
from sar_studies.checkpoints import sar_checkpoint

GRID = {"crs": "EPSG:32654", "transform": Affine(0.3, 0.05, 4e5, 0.05, -0.3, 3.9e6)}
NAMES = ("TestArea_001.tif", "TestArea_002.tif", "TestArea_003.tif")
SHAPE = (24, 32)


@pytest.fixture()
def tiles(tmp_path: Path) -> Path:
    """SAR tiles (the second with a no-data corner) and two soft-map folders as ``predict`` writes them.

    Soft maps: set ``a`` puts all its probability on class 0, set ``b`` puts 200 on class 0 and 55 on
    class 2, except one hand-computed pixel (0, 0): a says 2 -> 200, 5 -> 55; b says 2 -> 20, 5 -> 235.
    """
    rng = np.random.default_rng(0)
    for name in NAMES:
        sar = rng.integers(1, 256, SHAPE, dtype=np.uint8)
        if name == NAMES[1]:
            sar[12:, 20:] = 0  # no-data corner, 96 pixels
        write_raster(tmp_path / "sar" / name, sar, **GRID)
        a, b = np.zeros((9, *SHAPE), np.uint8), np.zeros((9, *SHAPE), np.uint8)
        a[0], b[0], b[2] = 255, 200, 55
        a[:, 0, 0], b[:, 0, 0] = 0, 0
        a[2, 0, 0], a[5, 0, 0], b[2, 0, 0], b[5, 0, 0] = 200, 55, 20, 235
        write_raster(tmp_path / "pred_a/soft" / name, a, **GRID)
        write_raster(tmp_path / "pred_b/soft" / name, b, **GRID)
    return tmp_path


def test_ensemble_submission_writes_pngs_and_zip_without_class_0_except_nodata(tiles: Path) -> None:
    out = tiles / "submission"
    # Through the command line (in this process); predict output folders are given, their soft/ is used.
    cli_main(
        ["submit", "--sar_dir", str(tiles / "sar"), "--soft_dirs", f"[{tiles / 'pred_a'},{tiles / 'pred_b'}]",
         "--output", str(out), "--nodata.min_area", "50", "--progress", "false"]
    )  # fmt: skip
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [n.replace(".tif", ".png") for n in NAMES]
    for name in pngs:
        with rasterio.open(out / name) as png:
            assert (png.driver, png.count, png.dtypes[0], png.shape) == ("PNG", 1, "uint8", SHAPE)
        label = read_raster(out / name)[0]
        assert label[0, 0] == 5  # 2 -> 220 vs 5 -> 290
        nodata = np.zeros(SHAPE, bool)
        if name == "TestArea_002.png":
            nodata[12:, 20:] = True
        assert (label[nodata] == 0).all()
        assert (label[~nodata] != 0).all()  # class 0 has weight 0: 1..8 win even where 0 has all the probability
        assert set(np.unique(label[~nodata])) <= {1, 2, 5}
    with zipfile.ZipFile(out / "submission.zip") as archive:
        assert sorted(archive.namelist()) == pngs
        assert all(archive.read(n) == (out / n).read_bytes() for n in pngs)


def test_class_weights_and_nodata_are_options(tiles: Path) -> None:
    out = submit(
        str(tiles / "out"), str(tiles / "sar"), soft_dirs=[str(tiles / "pred_a/soft")],
        ensemble=EnsembleSettings(class_weights=(1.0,) * 9), nodata=NoDataRule(apply=False), progress=False,
    )  # fmt: skip
    label = read_raster(out / "TestArea_002.png")[0]
    assert label[0, 0] == 2 and (label.ravel()[1:] == 0).all()  # one source, all classes: 0 wins, no mask


def test_checkpoints_run_on_the_sar_tiles_with_the_map_engine(tiles: Path) -> None:
    ckpt = sar_checkpoint(tiles / "sar.ckpt")
    out = submit(
        str(tiles / "out"), str(tiles / "sar"), ckpt_path=str(ckpt), inference=InferenceOverrides(window=16, stride=8),
        nodata=NoDataRule(apply=False), progress=False,
    )  # fmt: skip
    loaded = load_predictor(str(ckpt)).models[0]
    for name in NAMES:
        sar = torch.from_numpy(read_raster(tiles / "sar" / name))
        probs = tta_probs(loaded.forward, loaded.normalise(sar), 9, window=16, stride=8, batch_size=4)
        expected = probs_to_label(probs).numpy()
        np.testing.assert_array_equal(read_raster(out / name.replace(".tif", ".png"))[0], expected)


def test_missing_or_misfit_predictions_are_errors_and_keep_the_old_submission(tiles: Path) -> None:
    out = tiles / "submission"
    dirs = [str(tiles / "pred_a"), str(tiles / "pred_b")]
    submit(str(out), str(tiles / "sar"), soft_dirs=dirs[:1], progress=False)
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    (tiles / "pred_b/soft" / NAMES[2]).unlink()
    with pytest.raises(DataError, match=r"pred_b/soft/TestArea_003\.tif: missing: no prediction for the SAR tile"):
        submit(str(out), str(tiles / "sar"), soft_dirs=dirs, progress=False)
    write_raster(tiles / "pred_b/soft" / NAMES[2], np.zeros((9, 8, 8), np.uint8), **GRID)
    with pytest.raises(DataError, match=r"TestArea_003\.tif: size 8x8 differs from its SAR tile"):
        submit(str(out), str(tiles / "sar"), soft_dirs=dirs, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert not [p for p in tiles.iterdir() if p.name.startswith(".")]  # no temporary folder left
    write_raster(tiles / "pred_b/soft" / NAMES[2], np.zeros((9, *SHAPE), np.uint8), **GRID)
    submit(str(out), str(tiles / "sar"), soft_dirs=dirs, progress=False)  # an earlier submission is replaced
    assert {p.name for p in out.iterdir()} == set(old)
    assert (out / "submission.zip").read_bytes() != old["submission.zip"]
    with pytest.raises(ValueError, match="needs soft_dirs, ckpt_path or both"):
        submit(str(out), str(tiles / "sar"), progress=False)


def test_a_tiles_own_nodata_is_background_in_its_png(tiles: Path) -> None:
    sar = read_raster(tiles / "sar" / NAMES[0])[0]
    sar[:5, :7] = 0
    write_raster(tiles / "sar" / NAMES[0], sar, nodata=0, **GRID)  # this product says 0 is nodata
    out = submit(str(tiles / "out"), str(tiles / "sar"), soft_dirs=[str(tiles / "pred_b")], progress=False)
    label = read_raster(out / NAMES[0].replace(".tif", ".png"))[0]
    assert (label[:5, :7] == 0).all() and label[0, 7] == 0 and (label[5:] == 0).all()  # pred_b: class 0 wins
    weighted = submit(
        str(tiles / "out2"), str(tiles / "sar"), soft_dirs=[str(tiles / "pred_b")],
        ensemble=EnsembleSettings(class_weights=(0.0,) + (1.0,) * 8), progress=False,
    )  # fmt: skip
    label = read_raster(weighted / NAMES[0].replace(".tif", ".png"))[0]
    assert (label[:5, :7] == 0).all() and (label[5:] == 2).all()  # only the tile's own nodata stays 0


def test_a_folder_holding_anything_but_an_earlier_submission_is_never_replaced(tiles: Path) -> None:
    out = tiles / "submission"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    sources = {"soft_dirs": [str(tiles / "pred_a")], "progress": False}
    with pytest.raises(OutputRefusedError, match=r"submission: refused as --output: the folder holds files"):
        submit(str(out), str(tiles / "sar"), **sources)
    submit(str(tiles / "fresh"), str(tiles / "sar"), **sources)
    (tiles / "fresh" / "notes.txt").write_text("added by hand")  # an earlier submission, plus a file of the user's
    with pytest.raises(OutputRefusedError, match=r"the folder holds 'notes.txt', which sar-landcover did not write"):
        submit(str(tiles / "fresh"), str(tiles / "sar"), **sources)
    with pytest.raises(OutputRefusedError, match=r"sar: refused as --output: it is an input of this command"):
        submit(str(tiles / "sar"), str(tiles / "sar"), **sources)
    assert (out / "notes.txt").read_text() == "precious" and (tiles / "fresh" / "notes.txt").is_file()
    assert len(list((tiles / "sar").glob("*.tif"))) == len(NAMES)
