"""A child process's W&B run stays in its own folder, even after this process ran W&B itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sar_tracking.child_processes import environment_with_own_wandb_service

CHILD_RUN = """
import wandb
run = wandb.init(mode="offline", dir="run", project="child")
print("written by the child")
run.finish()
"""


def test_a_child_with_a_relative_wandb_folder_writes_nothing_into_the_parents_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    parent, child = tmp_path / "parent", tmp_path / "child"
    (child / "run").mkdir(parents=True)
    parent.mkdir()
    monkeypatch.chdir(parent)
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb.init(mode="offline", dir=str(tmp_path / "own"), project="parent").finish()
    env = environment_with_own_wandb_service()
    subprocess.run([sys.executable, "-c", CHILD_RUN], cwd=child, env=env, check=True, capture_output=True, timeout=120)
    logs = list((child / "run" / "wandb").glob("offline-run-*/files/output.log"))
    assert len(logs) == 1 and "written by the child" in logs[0].read_text()
    assert not (parent / "run").exists(), "the child's console log went to the parent's folder"
