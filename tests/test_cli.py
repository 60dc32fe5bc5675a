"""The command line end to end, in subprocesses, on tiny generated data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.cli import REPO, run_cli


@pytest.mark.slow
def test_fit_writes_checkpoints_and_logs_miou(tmp_path: Path, tiny_root: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "fit",
        "--config", str(REPO / "experiments/demo_sar.yaml"),
        "--data.root", str(tiny_root),
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
    best = torch.load(next(p for n, p in checkpoints.items() if n.startswith("best-")), weights_only=False)
    assert "optimizer_states" in state and "optimizer_states" not in best  # last resumes, best is the weights
    assert best["state_dict"].keys() == state["state_dict"].keys() and best["hyper_parameters"]
    (run_file,) = out.glob("wandb/offline-run-*/run-*.wandb")
    assert b"val/mIoU" in run_file.read_bytes() and b"IoU/Building" in run_file.read_bytes()
    assert (out / "config.yaml").is_file()

    # predict from the checkpoint: the network comes from it, the inference settings from the command
    predicted = tmp_path / "predict"
    result = run_cli(
        "predict",
        "--config", str(REPO / "experiments/demo_sar.yaml"),
        "--data.root", str(tiny_root),
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


def test_fit_on_a_missing_data_root_says_how_to_make_the_demo_data(tmp_path: Path) -> None:
    result = run_cli("fit", "--config", str(REPO / "experiments/demo_sar.yaml"), "--data.root", "missing", cwd=tmp_path)
    assert result.returncode != 0
    assert "missing: data root does not exist" in result.stderr
    assert "python cli.py make-demo-data --root missing" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no data generated, and it failed before any run folder or W&B run


@pytest.mark.slow  # a subprocess: LightningCLI's start-up alone is ~8 s of CPU
def test_print_config_shows_every_option() -> None:
    result = run_cli("fit", "--config", str(REPO / "experiments/demo_sar.yaml"), "--print_config", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load(result.stdout)
    model = config["model"]["init_args"]
    assert set(model["loss"]) >= {"sce_weight", "lovasz_weight", "ce_weight", "sce_alpha", "sce_beta", "sce_A"}
    assert model["loss"]["sce_beta"] == 2.0 and model["optim"]["head_lr_mult"] == 10.0
    assert set(model["network"]) >= {"arch", "encoder", "encoder_weights", "bn_momentum"}
    data = config["data"]["init_args"]
    assert data["cat_max_ratio"] == 0.75 and data["root"] == "data/demo"
    assert not any(key.startswith("demo") for key in data)  # a datamodule knows only a data root
    assert config["checkpoint"]["monitor"] == "val/mIoU"


@pytest.mark.slow  # a subprocess: LightningCLI's start-up alone is ~8 s of CPU
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
