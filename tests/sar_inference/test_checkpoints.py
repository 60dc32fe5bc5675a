"""Self-contained checkpoints: the record, loading without Lightning, legacy checkpoints, clear errors."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.rasters import DataError
from lightning_modules.input_transform import InputTransform
from lightning_modules.networks import NetworkConfig
from lightning_modules.optical_adapter import OpticalAdapter
from lightning_modules.sar_segmenter import SARSegmenter
from sar_inference.checkpoints import RECORD_KEY, checkpoint_record, load_model
from sar_inference.settings import InferenceConfig
from sar_studies.checkpoints import save_checkpoint

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_checkpoints"
"""Checkpoints written by the code before records (see make_legacy_checkpoints.py there)."""
SMALL = NetworkConfig(arch="Segformer", encoder="tu-test_efficientnet")


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(LEGACY / "expected.npz") as data:
        return dict(data)


@pytest.mark.parametrize("cli_style", [True, False], ids=["cli", "python"])
def test_a_checkpoint_alone_rebuilds_the_network_its_input_and_inference(tmp_path: Path, cli_style: bool) -> None:
    torch.manual_seed(3)
    task = SARSegmenter(
        network=NetworkConfig(**{**SMALL.__dict__, "in_channels": 3}),
        input=InputTransform(normalisation="imagenet"),
        inference=InferenceConfig(window=32, stride=16, flips=("none", "v")),
    ).eval()
    path = save_checkpoint(task, tmp_path / "sar.ckpt", cli_style=cli_style)
    record = torch.load(path, weights_only=True)[RECORD_KEY]  # plain types: no class needed to read it
    assert record["task"] == "lightning_modules.sar_segmenter.SARSegmenter" and record["kind"] == "sar"
    assert record["input"]["normalisation"] == "imagenet" and record["network"]["in_channels"] == 3
    loaded = load_model(path)
    assert not loaded.network.training and loaded.record.inference.flips == ("none", "v")
    for key, value in loaded.network.state_dict().items():
        torch.testing.assert_close(value, task.model.state_dict()[key])
    raw = torch.randint(0, 256, (1, 40, 24), dtype=torch.uint8)
    torch.testing.assert_close(loaded.probs(raw), task.predict_probs(task.normalise(raw[None])[0]))


@pytest.mark.parametrize("name", ["sar_cli", "sar_python"])
def test_legacy_sar_checkpoints_give_the_probabilities_of_the_old_code(name: str, expected: dict) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*assuming")  # their datamodule settings say it all
        loaded = load_model(LEGACY / f"{name}.ckpt")
    # The CLI one was trained on 3-channel ImageNet-normalised SAR, the Python one on 1 channel / 255:
    # both read from the datamodule settings the old checkpoints carry.
    normalisation = {"sar_cli": "imagenet", "sar_python": "divide_255"}[name]
    assert loaded.record.input.normalisation == normalisation
    torch.testing.assert_close(loaded.probs(expected["sar_input"]), torch.from_numpy(expected[name]))


def test_a_legacy_stage1_checkpoint_predicts_with_its_student_or_its_teacher(tmp_path: Path, expected: dict) -> None:
    loaded = load_model(LEGACY / "optical_python.ckpt", kind="optical")
    assert loaded.record.input.normalisation == "imagenet"
    torch.testing.assert_close(loaded.probs(expected["rgb_input"]), torch.from_numpy(expected["optical_python"]))
    state = torch.load(LEGACY / "optical_python.ckpt", weights_only=True)
    state["hyper_parameters"]["predict_with"] = "teacher"
    state["datamodule_hyper_parameters"].pop("demo_settings")  # a stand-in object, not re-picklable
    torch.save(state, tmp_path / "teacher.ckpt")
    teacher = load_model(tmp_path / "teacher.ckpt", kind="optical")
    torch.testing.assert_close(
        teacher.probs(expected["rgb_input"]), torch.from_numpy(expected["optical_python_teacher"])
    )


def test_lightning_loads_a_legacy_checkpoint_with_its_datamodule_normalisation(expected: dict) -> None:
    task = SARSegmenter.load_from_checkpoint(LEGACY / "sar_cli.ckpt", map_location="cpu").eval()
    assert task.input_transform.normalisation == "imagenet"
    image = task.normalise(torch.from_numpy(expected["sar_input"])[None])[0]
    torch.testing.assert_close(task.predict_probs(image), torch.from_numpy(expected["sar_cli"]))


def test_a_legacy_checkpoint_without_datamodule_settings_takes_the_task_default(tmp_path: Path) -> None:
    state = torch.load(LEGACY / "sar_python.ckpt", weights_only=True)
    del state["datamodule_hyper_parameters"]
    torch.save(state, tmp_path / "bare.ckpt")
    with pytest.warns(UserWarning, match=r"bare\.ckpt: written before .* assuming the sar default \(divide_255\)"):
        assert checkpoint_record(tmp_path / "bare.ckpt").input == InputTransform()


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.ckpt: checkpoint file does not exist"):
        load_model(tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataError, match=r"garbage\.ckpt: unreadable as a checkpoint"):
        load_model(garbage)
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(DataError, match=r"plain\.ckpt: not a Lightning checkpoint"):
        load_model(plain)


@pytest.mark.parametrize("cli_style", [True, False], ids=["cli", "python"])
def test_an_optical_stage1_model_is_refused_by_a_sar_command(tmp_path: Path, cli_style: bool) -> None:
    path = save_checkpoint(OpticalAdapter(network=NetworkConfig(**{**SMALL.__dict__, "in_channels": 3})),
                           tmp_path / "stage1.ckpt", cli_style)  # fmt: skip
    with pytest.raises(DataError, match=r"stage1\.ckpt: is a OpticalAdapter checkpoint \(optical\), but this command"):
        load_model(path)
    assert load_model(path, kind="optical").record.input.normalisation == "imagenet"
    with pytest.raises(DataError, match=r"optical_python\.ckpt: is a OpticalAdapter checkpoint"):
        load_model(LEGACY / "optical_python.ckpt")


def test_a_sar_network_with_other_input_channels_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(
        SARSegmenter(network=NetworkConfig(**{**SMALL.__dict__, "in_channels": 2})), tmp_path / "2.ckpt"
    )
    with pytest.raises(DataError, match=r"2\.ckpt: network takes 2 input channels"):
        load_model(path)


PROBE = """
import sys
from sar_landcover.commands import main
main(["map", "--ckpt_path", {ckpt!r}, "--input", {scene!r}, "--output", {out!r} + "/map.tif", "--progress", "false"])
main(["submit", "--ckpt_path", {ckpt!r}, "--sar_dir", {sar_dir!r}, "--output", {out!r} + "/submission",
      "--progress", "false"])
main(["evaluate", "--predictions", {out!r} + "/submission", "--labels", {labels!r}, "--progress", "false"])
print("LIGHTNING", sorted(m for m in sys.modules if m == "lightning" or m.startswith("lightning.")))
"""


def test_map_submit_and_evaluate_run_without_importing_lightning(tiny_root: Path, tmp_path: Path) -> None:
    sar_dir = tiny_root / "OpenEarthMap-SAR/test/sar_images"
    code = PROBE.format(
        ckpt=str(LEGACY / "sar_python.ckpt"), scene=str(sorted(sar_dir.iterdir())[0]), out=str(tmp_path),
        sar_dir=str(sar_dir), labels=str(tiny_root / "OpenEarthMap-SAR/test/labels"),
    )  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LIGHTNING []" in result.stdout
    assert (tmp_path / "map.tif").is_file() and (tmp_path / "submission/submission.zip").is_file()
    assert "mIoU" in result.stdout
