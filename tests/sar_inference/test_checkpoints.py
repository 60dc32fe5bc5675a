"""Loading checkpoints for inference: both checkpoint styles, the normaliser, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.rasters import DataError
from lightning_modules.networks import NetworkConfig
from lightning_modules.optical_adapter import OpticalAdapter
from lightning_modules.sar_segmenter import SARSegmenter
from sar_inference.checkpoints import load_task
from sar_studies.checkpoints import SAR_DATA, sar_checkpoint, save_checkpoint


@pytest.mark.parametrize("cli_style", [True, False], ids=["cli", "python"])
def test_loads_sar_task_in_eval_mode_with_its_weights_and_normaliser(tmp_path: Path, cli_style: bool) -> None:
    path = sar_checkpoint(tmp_path / "sar.ckpt", seed=3, cli_style=cli_style)
    loaded = load_task(path)
    assert isinstance(loaded.task, SARSegmenter) and not loaded.task.training
    assert loaded.task.inference_config.window == 64 and loaded.num_classes == 9
    torch.manual_seed(3)
    expected = SARSegmenter(network=NetworkConfig(in_channels=1)).state_dict()
    for key, value in loaded.task.state_dict().items():
        torch.testing.assert_close(value, expected[key])
    raw = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    torch.testing.assert_close(loaded.normaliser(raw), torch.tensor([[[[0.0, 1.0]]]]))  # divide_255 from the file


def test_imagenet_normalisation_and_an_explicit_override(tmp_path: Path) -> None:
    task = SARSegmenter(network=NetworkConfig(in_channels=3))
    path = save_checkpoint(task, tmp_path / "sar3.ckpt", {"normalisation": "imagenet", "in_channels": 3})
    loaded = load_task(path)
    assert loaded.normaliser.in_channels == 3
    torch.testing.assert_close(loaded.normaliser.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]) * 255)
    custom = load_task(path, normalisation="custom", mean=[10.0, 10.0, 10.0], std=[2.0, 2.0, 2.0])
    torch.testing.assert_close(custom.normaliser(torch.full((1, 1, 1, 1), 14)), torch.full((1, 3, 1, 1), 2.0))


def test_a_checkpoint_without_normalisation_needs_it_explicitly(tmp_path: Path) -> None:
    path = save_checkpoint(SARSegmenter(), tmp_path / "bare.ckpt")
    with pytest.raises(DataError, match=r"bare\.ckpt: holds no datamodule normalisation"):
        load_task(path)
    assert load_task(path, normalisation="divide_255").normaliser.in_channels == 1


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.ckpt: checkpoint file does not exist"):
        load_task(tmp_path / "missing.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataError, match=r"garbage\.ckpt: unreadable as a checkpoint"):
        load_task(garbage)
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(DataError, match=r"plain\.ckpt: not a Lightning checkpoint"):
        load_task(plain)


@pytest.mark.parametrize("cli_style", [True, False], ids=["cli", "python"])
def test_an_optical_stage1_model_is_refused_by_a_sar_command(tmp_path: Path, cli_style: bool) -> None:
    path = save_checkpoint(OpticalAdapter(), tmp_path / "stage1.ckpt", {"normalisation": "imagenet"}, cli_style)
    with pytest.raises(DataError, match=r"stage1\.ckpt: is a OpticalAdapter checkpoint, but this command needs a SAR"):
        load_task(path)
    assert isinstance(load_task(path, expected=OpticalAdapter).task, OpticalAdapter)


def test_a_sar_network_with_other_input_channels_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(SARSegmenter(network=NetworkConfig(in_channels=2)), tmp_path / "two.ckpt", SAR_DATA)
    with pytest.raises(DataError, match=r"two\.ckpt: network takes 2 input channels"):
        load_task(path)
