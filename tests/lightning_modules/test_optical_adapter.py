"""Stage 1 as a whole: the datamodule, the adapter's step, its teacher, checkpoints and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from datamodules.optical import OpticalDataModule
from datamodules.rasters import raster_info, read_label, read_raster
from datamodules.resolution_alignment import RAASettings, ResolutionAlignment
from lightning_modules.mean_teacher import AdaptationConfig
from lightning_modules.networks import NetworkConfig
from lightning_modules.optical_adapter import OpticalAdapter
from lightning_modules.optim import OptimConfig
from sar_inference.checkpoints import RECORD_KEY, load_model
from tests.helpers.cli import REPO, run_cli

SMALL_NET = NetworkConfig(arch="Unet", encoder="resnet18", in_channels=3)


def _datamodule(root: Path, **kwargs: object) -> OpticalDataModule:
    return OpticalDataModule(root=str(root), crop_size=64, batch_size=2, num_workers=0, **kwargs)


def _fit(
    root: Path, tmp_path: Path, steps: int, adaptation: AdaptationConfig = AdaptationConfig(), **task: object
) -> L.Trainer:
    L.seed_everything(0)
    model = OpticalAdapter(network=SMALL_NET, optim=OptimConfig(lr=1e-3, warmup_steps=1), adaptation=adaptation, **task)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=1,
        val_check_interval=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=_datamodule(root, samples_per_epoch=100))
    return trainer


def test_datamodule_yields_source_and_target_together(tiny_root: Path) -> None:
    dm = _datamodule(tiny_root)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))[0]
    assert set(batch) == {"source", "target"}
    assert batch["source"]["image"].shape == batch["target"]["image"].shape == (2, 3, 64, 64)
    assert set(batch["target"]["mask"].unique().tolist()) <= {0, 255}  # only padding is marked
    assert batch["source"]["image"].dtype == torch.uint8  # raw pixels: the task normalises
    assert [s.split for s in dm.val_sets] == ["val", "val_source"]
    assert [s.tiles[0].image.parent.name for s in dm.val_sets] == ["rgb_images", "images"]
    raw = batch["source"]["image"].clone()
    out = OpticalAdapter(network=SMALL_NET).on_after_batch_transfer(batch, 0)
    assert out["source"]["image"].dtype == torch.float32 and out["target"]["raw_image"].dtype == torch.uint8
    mean, std = torch.tensor([0.485, 0.456, 0.406]) * 255, torch.tensor([0.229, 0.224, 0.225]) * 255
    expected = (raw.float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)  # the default: ImageNet statistics
    torch.testing.assert_close(out["source"]["image"], expected)


def test_datamodule_passes_the_raa_settings_to_the_source_pipeline_only(tiny_root: Path) -> None:
    dm = _datamodule(tiny_root, raa=RAASettings(p=0.5, downsample_range=(0.3, 0.6), down_interpolation="area"))
    dm.setup("fit")
    raa = dm.source_set.augment.after_crop[0]  # the reference's order: after the first crop
    assert (raa.p, raa.downsample_range, raa.down_interpolation) == (0.5, (0.3, 0.6), "area")
    assert not any(isinstance(step, ResolutionAlignment) for step in dm.source_set.augment.before_crop)
    assert dm.target_set.augment.before_crop == () and dm.target_set.augment.after_crop == ()


def test_raa_before_the_rescale_is_the_first_step_of_the_source_pipeline(tiny_root: Path) -> None:
    dm = _datamodule(tiny_root, raa=RAASettings(p=0.5, position="before_rescale"))
    dm.setup("fit")
    assert isinstance(dm.source_set.augment.before_crop[0], ResolutionAlignment)
    assert dm.source_set.augment.after_crop == ()


def test_teacher_is_frozen_and_outside_the_optimiser() -> None:
    model = OpticalAdapter(network=SMALL_NET)
    assert all(not p.requires_grad for p in model.teacher.parameters())
    model.trainer = L.Trainer(max_steps=10, logger=False)
    optimiser = model.configure_optimizers()["optimizer"]
    held = {id(p) for group in optimiser.param_groups for p in group["params"]}
    assert held == {id(p) for p in model.model.parameters()}
    assert not held & {id(p) for p in model.teacher.parameters()}


@pytest.mark.slow
def test_adaptation_steps_update_student_and_teacher_by_ema(tiny_root: Path, tmp_path: Path) -> None:
    trainer = _fit(tiny_root, tmp_path, steps=3)
    model: OpticalAdapter = trainer.lightning_module
    student = dict(model.model.named_parameters())
    teacher = dict(model.teacher.named_parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
    # After three EMA steps (momenta 0, 0.5, 0.667) the teacher lies between its start and the student.
    differs = [not torch.equal(teacher[k], student[k]) for k in student]
    assert any(differs)
    metrics = trainer.callback_metrics
    assert {"train/loss_source", "train/loss_mix", "train/pseudo_label_weight", "val/mIoU"} <= set(metrics)
    assert 0.0 <= float(metrics["train/pseudo_label_weight"]) <= 1.0


@pytest.mark.slow
def test_source_only_switch_never_touches_the_teacher(tiny_root: Path, tmp_path: Path) -> None:
    trainer = _fit(tiny_root, tmp_path, steps=2, adaptation=AdaptationConfig(enabled=False))
    model: OpticalAdapter = trainer.lightning_module
    assert "train/loss_mix" not in trainer.callback_metrics
    L.seed_everything(0)  # the same initial weights as inside _fit
    initial = OpticalAdapter(network=SMALL_NET)
    for a, b in zip(model.teacher.state_dict().values(), initial.teacher.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.equal(model.model.encoder.conv1.weight, initial.model.encoder.conv1.weight)


def test_a_task_that_predicts_with_its_teacher_still_trains_its_student() -> None:
    model = OpticalAdapter(network=SMALL_NET, adaptation=AdaptationConfig(enabled=False), predict_with="teacher")
    model.log = lambda *args, **kwargs: None  # no trainer here: the step's logging is not under test
    raw = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    part = {"image": raw, "mask": torch.randint(0, 9, (2, 64, 64))}
    batch = model.on_after_batch_transfer({"source": dict(part), "target": dict(part)}, 0)
    loss = model.training_step(batch, 0)
    assert loss.requires_grad  # the source loss goes through the student (the teacher has no gradient)
    loss.backward()
    assert model.model.encoder.conv1.weight.grad is not None
    assert all(p.grad is None for p in model.teacher.parameters())
    with torch.no_grad():  # predict uses the teacher
        torch.testing.assert_close(model(batch["source"]["image"]), model.teacher(batch["source"]["image"]))


def test_an_adapted_step_is_the_same_whichever_network_predicts() -> None:
    # Both losses (source CE and the ClassMix CE) go through the student; the teacher only labels the target.
    # The teachers are moved away from their students, so a loss computed through the teacher would differ.
    raw = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    part = {"image": raw, "mask": torch.randint(0, 9, (2, 64, 64))}
    losses, grads = [], []
    for predict_with in ("student", "teacher"):
        torch.manual_seed(0)
        model = OpticalAdapter(network=SMALL_NET, predict_with=predict_with)
        model.log = lambda *args, **kwargs: None  # no trainer here: the step's logging is not under test
        with torch.no_grad():
            for p in model.teacher.parameters():
                p.add_(0.05 * torch.randn_like(p))
        batch = model.on_after_batch_transfer({"source": dict(part), "target": dict(part)}, 0)
        loss = model.training_step(batch, 0)
        loss.backward()
        losses.append(loss.detach())
        grads.append(model.model.encoder.conv1.weight.grad.clone())
    torch.testing.assert_close(losses[1], losses[0])
    torch.testing.assert_close(grads[1], grads[0])


def test_checkpoint_round_trip_restores_the_teacher(tmp_path: Path) -> None:
    model = OpticalAdapter(network=SMALL_NET, predict_with="teacher")
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.add_(torch.randn_like(p))
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    path = tmp_path / "adapter.ckpt"
    trainer.save_checkpoint(path)
    restored = OpticalAdapter.load_from_checkpoint(path)
    for a, b in zip(model.teacher.state_dict().values(), restored.teacher.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert not any(p.requires_grad for p in restored.teacher.parameters())
    # The record says the teacher predicts: the Lightning-free loader takes the teacher's weights.
    assert torch.load(path, weights_only=True)[RECORD_KEY]["predict_with"] == "teacher"
    loaded = load_model(path, kind="optical")
    for name, value in loaded.network.state_dict().items():
        torch.testing.assert_close(value, model.teacher.state_dict()[name])


@pytest.mark.slow
def test_stage1_fit_then_predict_writes_a_georeferenced_pseudo_label_set(tiny_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(tiny_root, tmp_path / "data"))
    out = tmp_path / "run"
    result = run_cli(
        "fit", "--config", str(REPO / "experiments/demo_stage1.yaml"), "--data.root", str(root),
        "--data.crop_size", "64", "--data.batch_size", "2", "--data.num_workers", "0",
        "--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
        "--trainer.default_root_dir", str(out), "--trainer.logger.init_args.save_dir", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "val after 2 steps: mIoU" in result.stdout and "val_source after 2 steps: mIoU" in result.stdout
    checkpoint = next(out.rglob("last.ckpt"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert any(k.startswith("teacher.") for k in state["state_dict"])

    predict = (
        "predict", "--config", str(REPO / "experiments/demo_stage1.yaml"), "--data.root", str(root),
        "--data.num_workers", "0", "--data.pseudo_label_set", "teacher_test", "--ckpt_path", str(checkpoint),
        "--model.init_args.inference.window", "48", "--model.init_args.inference.stride", "24",
        "--trainer.logger", "false",
        "--trainer.default_root_dir", str(out),
    )  # fmt: skip
    result = run_cli(*predict, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    train = root / "OpenEarthMap-SAR/train"
    paired = sorted(p.name for p in (train / "rgb_images").iterdir())
    labels = sorted((train / "labels_pl/teacher_test").glob("*.tif"))
    assert [p.name for p in labels] == paired  # every tile with an RGB partner, nothing else
    assert (train / "labels_pl/teacher_test/.sar-landcover.json").is_file()  # the set is marked as the project's
    for path in labels:
        sar, label = raster_info(train / "sar_images" / path.name), raster_info(path)
        assert (label.crs, label.transform, label.shape, label.count) == (sar.crs, sar.transform, sar.shape, 1)
        soft = read_raster(train / "labels_pl_soft/teacher_test" / path.name)
        assert soft.shape == (9, *sar.shape) and soft.dtype == np.uint8
        hard = read_label(path)
        assert int(hard.max()) <= 8
        # floor(255 p) can tie two classes; where it does not, its argmax is the label.
        top2 = np.sort(soft, axis=0)[-2:]
        clear = top2[1] > top2[0]
        np.testing.assert_array_equal(soft.argmax(0)[clear], hard[clear])
    stamps = [p.stat().st_mtime_ns for p in labels]
    result = run_cli(*predict, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{len(paired)} of {len(paired)} tiles already in" in result.stdout + result.stderr
    assert [p.stat().st_mtime_ns for p in labels] == stamps  # complete tiles are not rewritten

    # How to predict is the command's choice over the checkpoint's hyperparameters: here the teacher.
    by_teacher = [*predict, "--model.init_args.predict_with", "teacher", "--data.pseudo_label_set", "by_teacher"]
    result = run_cli(*by_teacher, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    student, teacher = (
        np.stack([read_raster(train / "labels_pl_soft" / name / p.name) for p in labels])
        for name in ("teacher_test", "by_teacher")
    )
    assert not np.array_equal(student, teacher)


@pytest.mark.slow
def test_teacher_is_identical_on_both_ddp_ranks(tiny_root: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(REPO / "tests/helpers/ddp_teacher_run.py"), str(tiny_root), str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    torch.testing.assert_close(rank0["teacher"], rank1["teacher"], rtol=0, atol=0)
    torch.testing.assert_close(rank0["student"], rank1["student"], rtol=0, atol=0)
    assert not torch.equal(rank0["teacher"], rank0["student"])  # the teacher lags: it is a real EMA


@pytest.mark.slow
def test_pseudo_labels_from_two_ddp_ranks_equal_those_of_one_process(tiny_root: Path, tmp_path: Path) -> None:
    fit = run_cli(
        "fit", "--config", str(REPO / "experiments/demo_stage1.yaml"), "--data.root", str(tiny_root),
        "--data.crop_size", "64", "--data.batch_size", "2", "--data.num_workers", "0", "--trainer.max_steps", "1",
        "--trainer.val_check_interval", "1", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
        "--trainer.default_root_dir", str(tmp_path / "fit"), "--last_checkpoint.dirpath", str(tmp_path / "fit"),
        cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = tmp_path / "fit" / "last.ckpt"
    outputs = {}
    for devices in (1, 2):
        root = Path(shutil.copytree(tiny_root, tmp_path / f"data{devices}"))
        result = run_cli(
            "predict", "--config", str(REPO / "experiments/demo_stage1.yaml"), "--data.root", str(root),
            "--data.num_workers", "0", "--ckpt_path", str(checkpoint), "--trainer.logger", "false",
            "--model.init_args.inference.window", "48",
            "--model.init_args.inference.stride", "24", "--trainer.accelerator", "cpu",
            "--trainer.devices", str(devices), "--trainer.strategy", "ddp" if devices == 2 else "auto",
            "--trainer.default_root_dir", str(tmp_path / f"run{devices}"),
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        folder = root / "OpenEarthMap-SAR/train/labels_pl/stage1"
        outputs[devices] = {p.name: read_label(p) for p in sorted(folder.glob("*.tif"))}
    assert list(outputs[1]) == list(outputs[2]) and len(outputs[1]) == 5
    for name, label in outputs[1].items():
        np.testing.assert_array_equal(label, outputs[2][name])


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_eval_mode_teacher_follows_the_students_batchnorm_statistics(mode: str) -> None:
    model = OpticalAdapter(network=SMALL_NET, adaptation=AdaptationConfig(teacher_mode=mode))
    model.model.encoder.bn1.running_mean.fill_(3.0)
    model.update_teacher(0)
    teacher_mean = model.teacher.encoder.bn1.running_mean
    assert torch.equal(teacher_mean, torch.full_like(teacher_mean, 3.0)) == (mode == "eval")
    torch.testing.assert_close(model.teacher.encoder.conv1.weight, model.model.encoder.conv1.weight)  # momentum 0
