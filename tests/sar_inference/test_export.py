"""``export``: ONNX and TorchScript networks of any height and width, their record inside; ONNX Runtime = PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from datamodules.rasters import DataError, read_raster, write_raster
from sar_inference.checkpoints import RECORD_KEY, load_model
from sar_inference.export import TORCHSCRIPT_RECORD, export, load_onnx_model
from sar_inference.runtimes import RuntimeSettings
from sar_inference.scene_mapper import map_scene
from sar_inference.settings import InferenceConfig
from sar_landcover.commands import main as cli_main
from sar_studies.checkpoints import sar_checkpoint

SIZES = [(1, 1, 96, 160), (2, 1, 77, 129)]
"""Random SAR batches of two sizes, the second no multiple of the network's output stride."""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("export")
    ckpt = sar_checkpoint(folder / "sar.ckpt", inference=InferenceConfig(window=64, stride=32))
    cli_main(["export", "--ckpt_path", str(ckpt), "--format", "onnx"])  # the command line, in this process
    return ckpt, folder / "sar.onnx"


def raw_batch(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_onnx_runtime_gives_the_probabilities_of_pytorch_on_two_sizes(exported: tuple[Path, Path]) -> None:
    ckpt, onnx_file = exported
    model = load_model(ckpt)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for seed, shape in enumerate(SIZES):
        images = model.record.input.normalise(raw_batch(shape, seed), model.record.network.in_channels)
        with torch.inference_mode():
            expected = model.forward(images).softmax(dim=1)
        logits = session.run(None, {"image": images.numpy()})[0]
        assert logits.shape == (shape[0], 9, *shape[2:])
        got = torch.from_numpy(logits).softmax(dim=1)
        assert (got - expected).abs().max().item() < 1e-4


def test_the_onnx_file_carries_the_input_transform_and_the_class_table(exported: tuple[Path, Path]) -> None:
    _, onnx_file = exported
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    record = json.loads(session.get_modelmeta().custom_metadata_map[RECORD_KEY])
    assert record["input"]["normalisation"] == "divide_255" and record["network"]["in_channels"] == 1
    assert record["classes"][8] == [8, "Building", "#DE1F07"] and record["kind"] == "sar"
    assert record["inference"]["window"] == 64
    shape = session.get_inputs()[0].shape
    assert shape[0] == "batch" and shape[2:] == ["height", "width"]  # dynamic axes


def test_torchscript_export_takes_any_size_and_carries_the_record(tmp_path: Path) -> None:
    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    path = export(str(ckpt), format="torchscript")
    assert path == tmp_path / "sar.pt"
    extra = {TORCHSCRIPT_RECORD: ""}
    scripted = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra[TORCHSCRIPT_RECORD])["classes"][1][1] == "Bareland"
    model = load_model(ckpt)
    for seed, shape in enumerate(SIZES):
        images = model.record.input.normalise(raw_batch(shape, seed), 1)
        with torch.inference_mode():
            torch.testing.assert_close(scripted(images), model.forward(images), atol=1e-5, rtol=1e-5)


def test_map_runs_an_exported_onnx_model_as_it_runs_the_checkpoint(exported: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, onnx_file = exported
    sar = np.random.default_rng(4).integers(0, 256, (100, 90), dtype=np.uint8)
    write_raster(tmp_path / "scene.tif", sar, crs="EPSG:32654")
    common = {"input": str(tmp_path / "scene.tif"), "progress": False, "qgis_style": False}
    map_scene(str(onnx_file), output=str(tmp_path / "from_onnx.tif"), **common)
    torch_runtime = RuntimeSettings(runtime="torch")
    map_scene(str(ckpt), output=str(tmp_path / "from_ckpt.tif"), runtime=torch_runtime, **common)
    from_onnx, from_ckpt = read_raster(tmp_path / "from_onnx.tif"), read_raster(tmp_path / "from_ckpt.tif")
    assert (from_onnx == from_ckpt).mean() > 0.999  # probabilities within 1e-4: a label flips only at a near tie


def test_an_exported_model_refuses_the_torch_runtime_and_bad_files_are_named(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    _, onnx_file = exported
    with pytest.raises(
        ValueError, match=r"sar\.onnx: exported, so an ONNX model runs with runtime openvino or onnxruntime"
    ):
        load_onnx_model(onnx_file).on_runtime(RuntimeSettings(runtime="torch"))
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(DataError, match=r"broken\.onnx: unreadable as an ONNX model"):
        load_onnx_model(tmp_path / "broken.onnx")
    with pytest.raises(DataError, match=r"missing\.ckpt: checkpoint file does not exist"):
        export(str(tmp_path / "missing.ckpt"))


def test_export_replaces_only_its_own_file_and_never_the_checkpoint(tmp_path: Path) -> None:
    from datamodules.output_safety import OutputRefusedError

    ckpt = sar_checkpoint(tmp_path / "sar.ckpt")
    first = export(str(ckpt), format="torchscript")
    assert export(str(ckpt), format="torchscript") == first  # its own earlier export is replaced
    (tmp_path / "mine.pt").write_bytes(b"the user's own model")
    for output in (tmp_path / "mine.pt", ckpt):
        before = output.read_bytes()
        with pytest.raises(OutputRefusedError, match=output.name):
            export(str(ckpt), format="torchscript", output=str(output))
        assert output.read_bytes() == before
