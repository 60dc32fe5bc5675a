"""Running the command line in a subprocess, as a user does, and the stage arguments of tiny runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sar_tracking.child_processes import environment_with_own_wandb_service

REPO = Path(__file__).resolve().parents[2]
"""The repository: ``cli.py`` and ``experiments/``."""
TINY_STAGE_ARGS = [
    "--trainer.max_steps=6",
    "--trainer.val_check_interval=2",
    "--data.init_args.crop_size=64",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--model.init_args.inference={window: 64, stride: 32}",
]
"""Arguments that make any demo fit or predict stage tiny (6 steps, 64 px crops and windows)."""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python cli.py ARGS`` in ``cwd`` with W&B offline; its captured output."""
    env = environment_with_own_wandb_service() | {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"
    return subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
