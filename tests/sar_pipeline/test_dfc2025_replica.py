"""The DFC2025 recipe end to end on a replica of the download (no val or test labels), with the CPU size overrides."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from sar_synthetic.replica import REPLICA_SETTINGS, generate_replica
from tests.helpers.cli import REPO

# The download's layout at a quarter of its tile size (the crops and windows of cpu_smoke.yaml still fit), few tiles.
SMALL = replace(
    REPLICA_SETTINGS, tile_size=256, oem_regions=3, oem_tiles_per_region=3, sar_train_tiles=4, sar_val_tiles=1,
    sar_test_tiles=2,
)  # fmt: skip


@pytest.mark.slow
def test_the_dfc2025_pipeline_runs_on_the_download_layout_from_stage1_to_the_submission(tmp_path: Path) -> None:
    root, run = generate_replica(tmp_path / "replica", SMALL, progress=False), tmp_path / "run"
    command = [
        sys.executable, str(REPO / "cli.py"), "pipeline", "--config=experiments/dfc2025/pipeline.yaml",
        "--config=experiments/dfc2025/cpu_smoke.yaml", f"--data_root={root}", f"--run_dir={run}",
        "--launch.parallel=2",  # the three stage-2 chains two at a time: the same stages, sooner
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    with zipfile.ZipFile(run / "submission" / "submission.zip") as archive:
        assert sorted(archive.namelist()) == ["TestArea_001.png", "TestArea_002.png"]
    assert "[evaluation] skipped" in output  # the download has no test labels
    for model in ("segformer_b5", "upernet_convnextv2", "official_baseline"):
        tifs = sorted(p.name for p in (run / "maps" / model / "labels").glob("*.tif"))  # beside: class-name sidecars
        assert tifs == ["TestArea_001.tif", "TestArea_002.tif"]
        log = (run / "stage2" / model / "stage.log").read_text()
        assert "val/labels has no tiles; validating on a hold-out of train tiles" in log, model
    for model in ("segformer_b3", "upernet_convnextv2"):
        assert "no labelled target optical" in (run / "stage1" / model / "stage.log").read_text(), model
        settings = yaml.safe_load((run / "pseudo_labels" / model / "runner_settings.yaml").read_text())
        assert settings["ckpt_path"].endswith("/last.ckpt")  # the end of the fit feeds the pseudo-labels
    selected = root / "OpenEarthMap-SAR" / "train" / "labels_pl" / "run-selected"
    assert len(list(selected.glob("*.tif"))) == 3  # the train tiles with an RGB partner
