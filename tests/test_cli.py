"""The command line end to end, in subprocesses, on tiny generated data."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from lightning_modules.networks import NetworkConfig, build_model
from sar_synthetic.generator import demo_data_complete
from tests.helpers.cli import REPO, run_cli
from tests.helpers.data import TINY


def is_pipeline_config(path: Path) -> bool:
    """Pipeline YAMLs (``cli.py pipeline``) rather than LightningCLI configs; tested in test_pipeline.py."""
    keys = yaml.safe_load(path.read_text()) or {}
    return "stage1" in keys or "stage2" in keys


LIGHTNING_CONFIGS = [p for p in sorted((REPO / "experiments").rglob("*.yaml")) if not is_pipeline_config(p)]
DEMO_CONFIGS = [p for p in LIGHTNING_CONFIGS if p.name.startswith("demo")]


@pytest.mark.slow
def test_fit_generates_data_writes_checkpoints_and_logs_miou(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "fit",
        "--config", str(REPO / "experiments/demo_sar.yaml"),
        "--data.root", str(tmp_path / "fresh"),
        *[f"--data.demo_settings.{k}={json.dumps(v)}" for k, v in asdict(TINY).items()],
        "--data.crop_size", "64",
        "--data.batch_size", "2",
        "--data.num_workers", "0",
        "--trainer.max_steps", "4",
        "--trainer.val_check_interval", "2",
        "--trainer.default_root_dir", str(out),
        "--trainer.logger.init_args.save_dir", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "val after 4 steps: mIoU" in result.stdout
    assert "Building" in result.stdout  # the per-class table
    checkpoints = {p.name: p for p in out.rglob("*.ckpt")}
    assert "last.ckpt" in checkpoints and any(n.startswith("best-") for n in checkpoints)
    state = torch.load(checkpoints["last.ckpt"], map_location="cpu", weights_only=False)
    assert state["global_step"] == 4
    monitor = next(v for k, v in state["callbacks"].items() if "val/mIoU" in k)
    assert 0.0 <= float(monitor["best_model_score"]) <= 1.0  # val/mIoU was logged and monitored
    (run_file,) = out.glob("wandb/offline-run-*/run-*.wandb")
    assert b"val/mIoU" in run_file.read_bytes() and b"IoU/Building" in run_file.read_bytes()
    assert (out / "config.yaml").is_file()

    # predict from the checkpoint: the network comes from it, the inference settings from the command
    predicted = tmp_path / "predict"
    result = run_cli(
        "predict",
        "--config", str(REPO / "experiments/demo_sar.yaml"),
        "--data.root", str(tmp_path / "fresh"),
        "--data.num_workers", "0",
        "--ckpt_path", str(checkpoints["last.ckpt"]),
        "--model.init_args.inference.flips=[none,h]",
        "--model.init_args.inference.window=64",
        "--model.init_args.inference.stride=32",
        "--model.init_args.network.encoder=resnet34",
        "--trainer.logger=false",
        "--trainer.default_root_dir", str(predicted),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    used = yaml.safe_load((predicted / "config.yaml").read_text())["model"]["init_args"]
    assert used["inference"]["flips"] == ["none", "h"] and used["inference"]["window"] == 64
    assert used["network"]["encoder"] == "resnet18"  # the checkpoint's network, not the command's
    assert demo_data_complete(tmp_path / "fresh")


def test_print_config_shows_every_option() -> None:
    result = run_cli("fit", "--config", str(REPO / "experiments/demo_sar.yaml"), "--print_config", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load(result.stdout)
    model = config["model"]["init_args"]
    assert set(model["loss"]) >= {"sce_weight", "lovasz_weight", "ce_weight", "sce_alpha", "sce_beta", "sce_A"}
    assert model["loss"]["sce_beta"] == 2.0 and model["optim"]["head_lr_mult"] == 10.0
    assert set(model["network"]) >= {"arch", "encoder", "encoder_weights", "bn_momentum"}
    data = config["data"]["init_args"]
    assert data["cat_max_ratio"] == 0.75 and data["demo_settings"]["tile_size"] > 0
    assert config["checkpoint"]["monitor"] == "val/mIoU"


def test_typo_in_config_fails_at_parse_time() -> None:
    result = run_cli(
        "fit", "--config", str(REPO / "experiments/demo_sar.yaml"), "--model.init_args.loss.sce_betta", "1", cwd=REPO
    )
    assert result.returncode != 0
    assert "sce_betta" in result.stderr


def test_make_demo_data_command(tmp_path: Path) -> None:
    result = run_cli(
        "make-demo-data", "--root", str(tmp_path / "d"), "--settings.tile_size", "32",
        "--settings.sar_train_tiles", "2", "--settings.sar_val_tiles", "1", "--settings.sar_test_tiles", "1",
        "--settings.oem_regions", "1", "--settings.oem_tiles_per_region", "2", "--progress", "false",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((tmp_path / "d/OpenEarthMap-SAR/train/sar_images").glob("*.tif"))) == 2


@pytest.mark.parametrize("config_path", DEMO_CONFIGS, ids=lambda p: p.name)
def test_demo_networks_keep_batchnorm_statistics_current(config_path: Path) -> None:
    """Guard against eval-mode collapse: BatchNorm momentum 0.01 (smp EfficientNets) lags in short CPU runs."""
    config = yaml.safe_load(config_path.read_text())
    network = config.get("model", {}).get("init_args", {}).get("network", {})
    model = build_model(**{k: v for k, v in vars(NetworkConfig(**network)).items() if k != "output_stride"})
    momenta = [m.momentum for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(m is None or m >= 0.1 for m in momenta)


@pytest.mark.parametrize("config_path", LIGHTNING_CONFIGS, ids=lambda p: p.name)
def test_every_experiment_config_parses(config_path: Path) -> None:
    result = run_cli("fit", "--config", str(config_path), "--print_config", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert yaml.safe_load(result.stdout)["model"]["class_path"].startswith("lightning_modules.")


@pytest.mark.parametrize("stage", ["stage1_optical.yaml", "stage2_sar.yaml"])
def test_the_multi_gpu_recipes_normalise_batches_over_every_gpu(stage: str) -> None:
    """With 2 crops per GPU, per-GPU BatchNorm statistics are noisy: both stages of the recipe sync them."""
    result = run_cli("fit", "--config", str(REPO / "experiments/dfc2025" / stage), "--print_config", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    trainer = yaml.safe_load(result.stdout)["trainer"]
    assert trainer["strategy"] == "ddp" and trainer["sync_batchnorm"] is True
