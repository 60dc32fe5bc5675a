"""Pipeline stages on 2 CPU processes (gloo DDP) agree with 1 process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml

from tests.helpers.cli import REPO, TINY_STAGE_ARGS


def run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "WANDB_MODE": "disabled", "NO_ALBUMENTATIONS_UPDATE": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


@pytest.mark.slow
def test_fit_and_predict_stages_on_two_processes_match_one_process(tiny_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "ddp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_root": str(tiny_root),
                "run_dir": str(tmp_path / "run"),
                "stage2": [
                    {"name": "sar", "configs": [str(REPO / "experiments/demo_sar.yaml")], "labels": "official",
                     "args": TINY_STAGE_ARGS}
                ],
                "launch": {"accelerator": "cpu", "devices": 2, "strategy": "ddp"},
            }
        )
    )  # fmt: skip
    run(["pipeline", f"--config={config}", "--only=stage2"], tmp_path)
    run(["pipeline", f"--config={config}", "--only=maps"], tmp_path)
    stage2 = tmp_path / "run" / "stage2" / "sar"
    for stage in (stage2, tmp_path / "run" / "maps" / "sar"):
        assert "MEMBER: 2/2" in (stage / "stage.log").read_text()  # really two processes
    (best,) = (stage2 / "checkpoints").glob("best-*.ckpt")
    # The best checkpoint holds weights only; the score it was chosen by is in last.ckpt's callback state.
    state = torch.load(stage2 / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    monitor = next(v for k, v in state["callbacks"].items() if "val/mIoU" in k)
    ddp_score = float(monitor["best_model_score"])  # reduced across the 2 ranks during the DDP fit

    common = [f"--config={REPO / 'experiments/demo_sar.yaml'}", *TINY_STAGE_ARGS, f"--data.root={tiny_root}",
              "--trainer.logger=false", "--trainer.devices=1", f"--ckpt_path={best}"]  # fmt: skip
    validate = run(["validate", *common], tmp_path)
    single_score = float(re.search(r"val after \d+ steps: mIoU ([0-9.]+)", validate).group(1))
    assert single_score == pytest.approx(ddp_score, abs=1e-4)

    single_maps = tmp_path / "single_maps"
    callbacks = json.dumps([{"class_path": "lightning_modules.prediction_writer.TileWriter"}])
    run(["predict", *common, f"--data.prediction_dir={single_maps}", f"--trainer.callbacks={callbacks}"], tmp_path)
    ddp_maps = tmp_path / "run" / "maps" / "sar"
    names = sorted(p.name for p in (single_maps / "soft").glob("*.tif"))
    assert names and names == sorted(p.name for p in (ddp_maps / "soft").glob("*.tif"))
    for name in names:
        for kind in ("labels", "soft"):
            with rasterio.open(single_maps / kind / name) as a, rasterio.open(ddp_maps / kind / name) as b:
                if kind == "labels":
                    np.testing.assert_array_equal(a.read(), b.read())
                else:  # floor(255 p): a last-bit difference of the two processes' convolutions may cross a step
                    difference = np.abs(a.read().astype(int) - b.read().astype(int))
                    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
                assert a.transform == b.transform
