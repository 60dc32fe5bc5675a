"""The stage runner end to end on tiny generated data, in subprocesses: kill during stage 2, resume, finish."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.cli import REPO, TINY_STAGE_ARGS
from tests.helpers.data import TINY


def tiny_pipeline(folder: Path, group: str) -> Path:
    """The demo pipeline at a tiny size: the official labeller, one stage-1 model, the method and the baseline."""
    demo = yaml.safe_load((REPO / "experiments/demo.yaml").read_text())
    demo.update(data_root=str(folder / "data"), run_dir=str(folder / "run"))
    preparation = demo["prepare"]["init_args"]
    preparation.update(root=str(folder / "data"), settings=asdict(TINY))
    demo["tracking"] = {"group": group}
    for model in demo["stage1"] + demo["stage2"] + [preparation["official_labeller"]]:
        model["args"] = model.get("args", []) + TINY_STAGE_ARGS
    path = folder / "tiny_pipeline.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def start_pipeline(config: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.Popen(
        [sys.executable, str(REPO / "cli.py"), "pipeline", f"--config={config}"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def mtimes(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and "wandb" not in p.parts}


@pytest.fixture(scope="module")
def resumed_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Run the pipeline, kill it once stage 2 has a checkpoint, then run the same command again; its
    folder (checkpoints of every stage) is removed after the module's tests if they all passed."""
    failed_before = request.session.testsfailed
    folder = tmp_path_factory.mktemp("pipeline")
    config = tiny_pipeline(folder, group="tiny-e2e-group")
    run, data = folder / "run", folder / "data"
    first = start_pipeline(config, folder)
    stage2_checkpoint = run / "stage2" / "method" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 1200  # generous: a loaded machine is slow, not wrong
    while not stage2_checkpoint.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first_output = first.communicate()[0]
    assert stage2_checkpoint.exists(), first_output[-3000:]
    before = {"stage1": mtimes(run / "stage1"), "labels": mtimes(data / "OpenEarthMap-SAR/train/labels_pl")}
    second = start_pipeline(config, folder)
    output = second.communicate(timeout=600)[0]
    assert second.returncode == 0, output[-4000:]
    yield {"run": run, "data": data, "output": output, "before": before, "first_output": first_output}
    if request.session.testsfailed == failed_before:
        shutil.rmtree(folder)


@pytest.mark.slow
def test_a_killed_pipeline_resumes_without_rerunning_stage1(resumed_run: dict) -> None:
    run, output = resumed_run["run"], resumed_run["output"]
    assert "[stage1/adapted] complete, skipped" in output
    assert "[official_labels] complete, skipped" in output
    assert "[pseudo_labels/adapted] complete, skipped" in output
    assert mtimes(run / "stage1") == resumed_run["before"]["stage1"]  # stage-1 outputs untouched
    assert mtimes(resumed_run["data"] / "OpenEarthMap-SAR/train/labels_pl") == resumed_run["before"]["labels"]
    stage2_log = (run / "stage2" / "method" / "stage.log").read_text()
    assert "Restoring states from the checkpoint path" in stage2_log  # resumed inside the fit
    state = torch.load(run / "stage2/method/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 6


@pytest.mark.slow
def test_every_stage_writes_its_outputs_and_the_table_compares_method_and_baseline(resumed_run: dict) -> None:
    run, data, output = resumed_run["run"], resumed_run["data"], resumed_run["output"]
    test_tiles = sorted(p.name for p in (data / "OpenEarthMap-SAR/test/sar_images").glob("*.tif"))
    train_rgb = sorted(p.name for p in (data / "OpenEarthMap-SAR/train/rgb_images").glob("*.tif"))
    assert sorted(p.name for p in (data / "OpenEarthMap-SAR/train/labels_pl/run-adapted").glob("*.tif")) == train_rgb
    # The official labels are the source-only labeller's set (the generator's are kept aside).
    labeller_set = data / "OpenEarthMap-SAR/train/labels_pl/run-official_labeller"
    official = data / "OpenEarthMap-SAR/train/labels"
    assert sorted(p.name for p in official.glob("*.tif")) == train_rgb
    assert all((official / n).read_bytes() == (labeller_set / n).read_bytes() for n in train_rgb)
    assert len(list((data / "OpenEarthMap-SAR/train/labels_noise_model").glob("*.tif"))) == len(train_rgb) + 1
    for model in ("method", "baseline"):
        assert list((run / "stage2" / model / "checkpoints").glob("best-*.ckpt"))
        # The runner's tie-ins went in as the stage's last config, and are recorded with its command.
        record = json.loads((run / "stage2" / model / "stage.json").read_text())
        assert record["command"][-1] == f"--config={run / 'stage2' / model / 'runner_settings.yaml'}"
        assert record["settings"]["data"]["init_args"]["root"] == str(data)
        assert sorted(p.name for p in (run / "maps" / model / "labels").glob("*.tif")) == test_tiles
        assert (run / "stage2" / model / "config.yaml").is_file()
    pngs = sorted(p.stem for p in (run / "submission").glob("*.png"))
    assert pngs == [Path(t).stem for t in test_tiles]
    with zipfile.ZipFile(run / "submission" / "submission.zip") as archive:
        assert sorted(Path(n).stem for n in archive.namelist()) == pngs
    scores = json.loads((run / "evaluation" / "scores.json").read_text())
    names = [row["name"] for row in scores["rows"]]
    assert {"maps/method", "maps/baseline", "submission"} <= set(names)
    for row in scores["rows"]:
        assert 0.0 <= row["mIoU"] <= 1.0 and len(row["per_class"]) == 8
    assert "submission" in output and str(run / "submission") in output  # the log names both paths
    assert str(data / "OpenEarthMap-SAR/train/labels_pl/run-adapted") in output
    assert "maps/baseline" in output and "mIoU" in output  # the final table is printed


@pytest.mark.slow
def test_wandb_writes_one_offline_run_per_stage_in_one_group(resumed_run: dict) -> None:
    run = resumed_run["run"]
    for stage in (
        "stage1/adapted",
        "pseudo_labels/adapted",
        "stage2/method",
        "maps/method",
        "submission_stage",  # the submission stage's own folder: submit replaces submission/ as a whole
        "evaluation",
    ):
        files = list((run / stage).glob("wandb/offline-run-*/run-*.wandb"))
        assert files, f"no W&B run for {stage}"
        # stage1 and pseudo_labels finished in the killed first run: their files must be complete.
        content = b"".join(f.read_bytes() for f in files)
        assert b"tiny-e2e-group" in content, stage
    fit = b"".join(f.read_bytes() for f in (run / "stage2/method").glob("wandb/offline-run-*/run-*.wandb"))
    for key in (
        b"val/mIoU",
        b"IoU/Building",
        b"train/loss",
        b"confusion_matrix",
        b"val/segmentation",  # the overlays, as W&B segmentation masks
        b"stage2-method-run",
    ):
        assert key in fit, key
    evaluation = b"".join(f.read_bytes() for f in (run / "evaluation").glob("wandb/offline-run-*/run-*.wandb"))
    assert b"evaluation/scores" in evaluation
