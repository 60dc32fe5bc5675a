"""A fit stopped by a signal and resumed from its checkpoint ends exactly where an uninterrupted fit ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lightning_modules.signal_checkpoint import EXIT_CODE, next_hpc_checkpoint
from tests.helpers.cli import REPO, TINY_STAGE_ARGS, run_cli

SIGNAL_AT = {"class_path": "tests.helpers.signal_at_step.SignalAtStep", "init_args": {"step": 3}}
ON_SIGNAL = {"class_path": "lightning_modules.signal_checkpoint.CheckpointOnSignal"}


def test_hpc_checkpoints_are_numbered_after_the_highest(tmp_path: Path) -> None:
    assert next_hpc_checkpoint(tmp_path).name == "hpc_ckpt_1.ckpt"
    for name in ("hpc_ckpt_1.ckpt", "hpc_ckpt_7.ckpt", "hpc_ckpt_x.ckpt"):
        (tmp_path / name).touch()
    assert next_hpc_checkpoint(tmp_path).name == "hpc_ckpt_8.ckpt"


def fit(config: str, root: Path, out: Path, *extra: str) -> int:
    result = run_cli(
        "fit",
        f"--config={REPO / config}",
        *TINY_STAGE_ARGS,
        "--data.init_args.samples_per_epoch=8",  # 4 steps an epoch: the 6 steps cross an epoch boundary
        f"--data.init_args.root={root}",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={out}",
        f"--checkpoint.dirpath={out / 'checkpoints'}",
        f"--last_checkpoint.dirpath={out / 'checkpoints'}",
        *extra,
        cwd=out.parent,
    )
    assert result.returncode in (0, EXIT_CODE), result.stderr[-3000:]
    return result.returncode


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("config", ["experiments/demo_stage1.yaml", "experiments/demo_sar.yaml"])
def test_a_fit_stopped_mid_epoch_by_the_signal_resumes_exactly(config: str, tiny_root: Path, tmp_path: Path) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert fit(config, tiny_root, straight, f"--trainer.callbacks+={json.dumps(ON_SIGNAL)}") == 0

    code = fit(config, tiny_root, stopped, f"--trainer.callbacks+={json.dumps([SIGNAL_AT, ON_SIGNAL])}")
    assert code == EXIT_CODE
    hpc = stopped / "hpc_ckpt_1.ckpt"
    assert torch.load(hpc, map_location="cpu", weights_only=False)["global_step"] == 3  # mid-epoch, between validations
    assert fit(config, tiny_root, stopped, f"--ckpt_path={hpc}") == 0

    final, resumed = weights(straight / "checkpoints" / "last.ckpt"), weights(stopped / "checkpoints" / "last.ckpt")
    assert final.keys() == resumed.keys()
    for name, tensor in final.items():  # the student, and in stage 1 the EMA teacher too
        assert torch.equal(tensor, resumed[name]), name
