"""Model factory, local encoder weights, optimiser groups and the learning-rate schedule."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from lightning_modules.networks import (
    NetworkConfig,
    build_model,
    build_network,
    load_encoder_weights,
    load_network_weights,
)
from lightning_modules.optim import OptimConfig, parameter_groups, warmup_poly_factor
from lightning_modules.sar_segmenter import SARSegmenter


@pytest.mark.parametrize(
    ("arch", "encoder"),
    [("Unet", "resnet18"), ("UPerNet", "resnet18"), ("Segformer", "mit_b0"), ("DeepLabV3Plus", "resnet18"),
     ("FPN", "resnet18"), ("Unet", "tu-resnet10t")],
)  # fmt: skip
def test_every_architecture_gives_nine_class_logits_for_one_band_sar(arch: str, encoder: str) -> None:
    model = build_model(arch, encoder, in_channels=1, num_classes=9)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 9, 64, 64)


def test_task_forward_handles_sizes_that_are_not_multiples_of_the_stride() -> None:
    task = SARSegmenter(network=NetworkConfig(encoder="resnet18"))
    assert task(torch.randn(2, 1, 70, 45)).shape == (2, 9, 70, 45)


def test_bn_momentum_override() -> None:
    model = build_model("Unet", "efficientnet-b0", 1, 9, bn_momentum=0.1)
    momenta = {m.momentum for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    assert momenta == {0.1}


def test_local_encoder_weights_are_loaded_and_adapted_to_one_channel(tmp_path: Path) -> None:
    donor = build_model("Unet", "resnet18", in_channels=3, num_classes=9)
    path = tmp_path / "resnet18.pth"
    torch.save(donor.encoder.state_dict(), path)
    model = build_model("Unet", "resnet18", in_channels=1, num_classes=9, encoder_weights=str(path))
    torch.testing.assert_close(model.encoder.layer1[0].conv1.weight, donor.encoder.layer1[0].conv1.weight)
    torch.testing.assert_close(model.encoder.conv1.weight, donor.encoder.conv1.weight.sum(1, keepdim=True))


def test_stage1_lightning_checkpoint_initialises_the_encoder_with_the_student(tmp_path: Path) -> None:
    student, teacher = (build_model("Unet", "resnet18", in_channels=3, num_classes=9) for _ in range(2))
    state = {f"model.{k}": v for k, v in student.state_dict().items()}
    state |= {f"teacher.{k}": v for k, v in teacher.state_dict().items()}
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": state, "global_step": 3}, path)
    model = build_model("Unet", "resnet18", in_channels=1, num_classes=9, encoder_weights=str(path))
    torch.testing.assert_close(model.encoder.layer4[1].conv2.weight, student.encoder.layer4[1].conv2.weight)
    assert not torch.equal(model.encoder.layer4[1].conv2.weight, teacher.encoder.layer4[1].conv2.weight)


def test_wrong_weights_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match=r"other\.pth: no tensor matches"):
        load_encoder_weights(build_model("Unet", "resnet18", 1, 9).encoder, path)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        build_model("Unet", "resnet18", 1, 9, encoder_weights=str(tmp_path / "missing.pth"))


def test_parameter_groups_head_lr_and_no_decay_on_norms() -> None:
    model = build_model("Unet", "resnet18", 1, 9)
    groups = {g["name"]: g for g in parameter_groups(model, OptimConfig(lr=1e-4, weight_decay=0.05, head_lr_mult=10))}
    assert groups["encoder"]["lr"] == pytest.approx(1e-4) and groups["head"]["lr"] == pytest.approx(1e-3)
    assert groups["encoder_norm"]["weight_decay"] == 0.0 and groups["head"]["weight_decay"] == 0.05
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    assert all(id(p) in encoder_ids for p in groups["encoder"]["params"] + groups["encoder_norm"]["params"])
    assert model.encoder.bn1.weight in groups["encoder_norm"]["params"]
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each parameter exactly once


def test_warmup_then_poly_schedule() -> None:
    factor = [warmup_poly_factor(s, warmup_steps=10, total_steps=110, power=1.0, warmup_ratio=1e-6) for s in range(111)]
    assert factor[0] == pytest.approx(1e-6)
    assert factor[5] == pytest.approx(1e-6 + (1 - 1e-6) * 0.5)
    assert factor[10] == pytest.approx(1.0)
    assert factor[60] == pytest.approx(0.5)
    assert factor[110] == 0.0
    assert warmup_poly_factor(60, 10, 110, power=2.0, warmup_ratio=0.0) == pytest.approx(0.25)


def test_sar_segmenter_checkpoint_loads_with_its_settings(tmp_path: Path) -> None:
    import lightning as L

    from lightning_modules.sar_segmenter import LossConfig

    task = SARSegmenter(network=NetworkConfig(encoder="resnet18"), loss=LossConfig(ce_weight=1.0, sce_beta=3.0))
    trainer = L.Trainer(logger=False, enable_checkpointing=False)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / "sar.ckpt")
    restored = SARSegmenter.load_from_checkpoint(tmp_path / "sar.ckpt")
    assert restored.loss_config == LossConfig(ce_weight=1.0, sce_beta=3.0)
    torch.testing.assert_close(restored.model.encoder.conv1.weight, task.model.encoder.conv1.weight)


def test_scse_decoder_attention_is_built_into_every_unet_decoder_block() -> None:
    plain = build_model("Unet", "resnet18", 1, 9)
    scse = build_model("Unet", "resnet18", 1, 9, decoder_attention_type="scse")
    assert not [m for m in plain.modules() if type(m).__name__ == "SCSEModule"]
    attention = [m for m in scse.modules() if type(m).__name__ == "SCSEModule"]
    assert len(attention) == 2 * len(scse.decoder.blocks)  # before and after each block's convolutions
    assert scse(torch.rand(1, 1, 64, 64)).shape == (1, 9, 64, 64)
    with pytest.raises(ValueError, match="Unet only"):
        build_model("FPN", "resnet18", 1, 9, decoder_attention_type="scse")


def test_a_constant_schedule_keeps_the_rate_through_a_fit() -> None:
    model = SARSegmenter(network=NetworkConfig(), optim=OptimConfig(optimizer="adam", lr=1e-4, schedule="constant"))
    model.trainer = L.Trainer(max_steps=100, logger=False)
    config = model.configure_optimizers()
    optimiser, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(5):
        optimiser.step()
        schedule.step()
        rates.append({g["lr"] for g in optimiser.param_groups})
    assert rates == [{1e-4 * 10.0, 1e-4}] * 5  # head x10 by default; constant over steps


def test_init_weights_load_the_whole_network_from_a_stage1_checkpoint(tmp_path: Path) -> None:
    student, teacher = (build_model("Unet", "resnet18", in_channels=3, num_classes=9) for _ in range(2))
    state = {f"model.{k}": v for k, v in student.state_dict().items()}
    state |= {f"teacher.{k}": v for k, v in teacher.state_dict().items()}
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": state}, path)
    model = build_network(NetworkConfig(in_channels=3, init_weights=str(path)))
    for key, value in student.state_dict().items():  # encoder, decoder and head
        torch.testing.assert_close(model.state_dict()[key], value)


def test_init_weights_of_another_network_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "sar.ckpt"
    sar = build_model("Unet", "resnet18", 1, 9)
    torch.save({"state_dict": {f"model.{k}": v for k, v in sar.state_dict().items()}}, path)
    with pytest.raises(ValueError, match=r"sar\.ckpt: its network differs from this one in 1 tensors"):
        load_network_weights(build_model("Unet", "resnet18", 3, 9), path)
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        build_network(NetworkConfig(init_weights=str(tmp_path / "missing.ckpt")))
