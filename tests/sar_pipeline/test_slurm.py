"""The cluster path on a real Slurm: experiments/slurm/pipeline.sbatch, requeued mid-fit by its time limit.

The cluster is the one-node Slurm of ``scripts/slurm_local_cluster.sh`` (``.ci/run`` starts it);
without it the test is skipped. A tiny pipeline (stage 1, pseudo-labels, stage 2, maps, submission)
runs twice on 2 CPU processes (gloo): once with the local launcher, once as a Slurm job on 2 tasks.
Once the job's stage-2 fit has validated, the test cuts the job's time limit so that Slurm's
warning signal (``--signal=B:USR1@90``) falls in the middle of that fit: the runner stops it
through its checkpoint and requeues the job. (That a resumed stage-1 fit, with its EMA teacher
and ClassMix, is exact too is tested in ``tests/lightning_modules/test_signal_checkpoint.py``.)
Two scheduling shortcuts keep the test short and change nothing the job sees: the requeued job's
time limit is set back to 30 minutes, and it may start as soon as the node is free instead of
after Slurm's 2-minute hold for requeued jobs. The requeued job must skip the finished stages (stage 1,
pseudo-labels), resume stage 2 from its ``hpc_ckpt_*.ckpt``, keep its run folder and W&B run ids,
and end with outputs identical to the local run's.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from PIL import Image

from tests.helpers.cli import REPO

CLUSTER = REPO / "scripts" / "slurm_local_cluster.sh"
FIT_ARGS = [
    "--data.init_args.crop_size=64",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--trainer.val_check_interval=10",
    "--model.init_args.inference={window: 64, stride: 32}",
]
STAGE1_STEPS = 20  # stage 1 only has to finish: the job is interrupted in stage 2
STAGE2_STEPS = 120
# Each step of the interrupted fit lasts at least 0.5 s, so it runs for more than the ~45 s the warning
# may take after the time limit is cut, however fast the machine.
PAUSE = {"class_path": "tests.helpers.slow_steps.PauseAfterStep", "init_args": {"seconds": 0.5}}


def scontrol(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["scontrol", *args], env=env, capture_output=True, text=True, check=True).stdout


def job_fields(env: dict[str, str], job: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S*)", scontrol(env, "show", "job", job)))


@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    """The environment of Slurm's clients, once the local cluster answers (started here if it is installed)."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    started = subprocess.run(["bash", str(CLUSTER), "start", "--no-install"], capture_output=True, text=True)
    if started.returncode != 0:
        reason = (started.stderr.strip().splitlines() or ["failed"])[-1]
        pytest.skip(f"no local Slurm cluster ({reason}); start one with scripts/slurm_local_cluster.sh start")
    conf = subprocess.run(["bash", str(CLUSTER), "env"], capture_output=True, text=True, check=True).stdout
    return {**os.environ, "SLURM_CONF": conf.strip().split("=", 1)[1]}


def node_state(env: dict[str, str]) -> str:
    """State of the cluster's one node (``idle`` once no job or step is left on it)."""
    return subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout.strip()


def tail(log: Path, chars: int = 3000) -> str:
    """The end of the job's log, for a failure message (empty while SLURM has not opened it)."""
    return log.read_text()[-chars:] if log.exists() else ""


def run_seconds(runtime: str) -> int:
    """Seconds of Slurm's ``RunTime`` field (``[D-]HH:MM:SS``)."""
    days, _, clock = runtime.rpartition("-")
    hours, minutes, seconds = (int(v) for v in clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def write_pipeline(folder: Path, data: Path) -> Path:
    config = {
        "data_root": str(data),
        "run_dir": str(folder / "tiny"),
        "stage1": [
            {
                "name": "adapted",
                "configs": [str(REPO / "experiments/demo_stage1.yaml")],
                "args": [*FIT_ARGS, f"--trainer.max_steps={STAGE1_STEPS}"],
            }
        ],
        "stage2": [
            {
                "name": "sar",
                "configs": [str(REPO / "experiments/demo_sar.yaml")],
                "args": [*FIT_ARGS, f"--trainer.max_steps={STAGE2_STEPS}", f"--trainer.callbacks+={json.dumps(PAUSE)}"],
            }
        ],
        "launch": {"accelerator": "cpu", "strategy": "ddp"},
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def stage_env(env: dict[str, str]) -> dict[str, str]:
    # One thread per process in both runs: the same arithmetic, and no oversubscription of 2 cores.
    return {**env, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}


def wandb_ids(stage: Path) -> set[str]:
    return {p.name.split("-", 3)[3] for p in (stage / "wandb").glob("offline-run-*")}


def state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def assert_same_rasters(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.tif"))
    assert names and names == sorted(p.name for p in b.glob("*.tif")), (a, b)
    for name in names:
        with rasterio.open(a / name) as x, rasterio.open(b / name) as y:
            np.testing.assert_array_equal(x.read(), y.read(), err_msg=str(a / name))


@pytest.mark.slow
@pytest.mark.slurm
def test_a_job_requeued_mid_fit_by_its_time_limit_finishes_as_the_local_run(
    slurm_env: dict[str, str], tiny_root: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    runs = {}
    for name in ("local", "slurm"):
        shutil.copytree(tiny_root, tmp_path / name / "data")  # the pipeline writes pseudo-labels into its data root
        runs[name] = write_pipeline(tmp_path / name, tmp_path / name / "data")
    env = stage_env(slurm_env)
    activate = tmp_path / "activate.sh"  # the SAR_LANDCOVER_ACTIVATE hook: this interpreter first on PATH
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    log = tmp_path / "slurm" / "sar-landcover-%j.out"
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--ntasks-per-node=2", "--gpus-per-node=0", "--cpus-per-task=1", "--time=30",
         f"--output={log}", str(REPO / "experiments/slurm/pipeline.sbatch")],
        cwd=REPO, capture_output=True, text=True, check=True,
        env={**env, "CONFIG": str(runs["slurm"]), "RUN_DIR": str(tmp_path / "slurm" / "tiny"),
             "SAR_LANDCOVER_ACTIVATE": str(activate)},
    )  # fmt: skip
    job = submitted.stdout.strip().split(";")[0]
    local = subprocess.Popen(
        [sys.executable, str(REPO / "cli.py"), "pipeline", f"--config={runs['local']}", "--launch.devices=2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    stage2 = tmp_path / "slurm" / "tiny" / "stage2" / "sar"
    log = tmp_path / "slurm" / f"sar-landcover-{job}.out"
    try:
        # 1. Once stage 2 has validated (a checkpoint exists), cut the time limit: the warning is due now.
        deadline = time.monotonic() + 1200
        while not (stage2 / "checkpoints" / "last.ckpt").exists():
            state = job_fields(slurm_env, job)["JobState"]
            assert time.monotonic() < deadline and state in ("PENDING", "RUNNING"), (state, tail(log))
            time.sleep(1)
        elapsed = run_seconds(job_fields(slurm_env, job)["RunTime"])
        limit = math.ceil((elapsed + 45) / 60)  # ends 45-105 s from now: the 90 s warning comes before the end
        scontrol(slurm_env, "update", f"JobId={job}", f"TimeLimit={limit}")
        cut_at = time.monotonic()
        # 2. Requeued: its next run gets the full limit back and may start at once.
        while job_fields(slurm_env, job).get("Restarts") != "1":
            assert time.monotonic() - cut_at < 240, log.read_text()[-3000:]
            time.sleep(1)
        requeued_after = time.monotonic() - cut_at
        scontrol(slurm_env, "update", f"JobId={job}", "TimeLimit=30")
        # Start it only once the node has stayed idle for a few seconds: a start while slurmd still ends
        # the old run fails the job ("Job credential revoked": seen with the start 0.3 s after the
        # requeue, the node already showing idle), which Slurm's own 2-minute hold would have avoided.
        idle_since = None
        while idle_since is None or time.monotonic() - idle_since < 5:
            assert time.monotonic() - cut_at < 300, node_state(slurm_env)
            idle = node_state(slurm_env) == "idle"
            idle_since = (idle_since or time.monotonic()) if idle else None
            time.sleep(1)
        scontrol(slurm_env, "update", f"JobId={job}", "StartTime=now")
        # 3. The job finishes.
        while (state := job_fields(slurm_env, job)["JobState"]) != "COMPLETED":
            assert state in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED"), log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(2)
        local_output = local.communicate(timeout=900)[0]
    finally:
        if local.poll() is None:
            local.kill()
        subprocess.run(["scancel", job], env=slurm_env, capture_output=True)
    assert local.returncode == 0, local_output[-3000:]
    text = log.read_text()
    took = time.monotonic() - started
    print(f"job {job}: requeued {requeued_after:.0f} s after the time limit was cut; the test took {took:.0f} s")
    print(text)

    # Requeued mid-fit through the checkpoint, then resumed from it with the same job id and run folder.
    assert f"job {job} (restart 0)" in text and f"job {job} (restart 1)" in text
    assert "runner: SIGUSR1 received" in text and f"runner: requeued job {job}" in text
    (hpc,) = stage2.glob("hpc_ckpt_*.ckpt")
    steps = torch.load(hpc, map_location="cpu", weights_only=False)["global_step"]
    assert 10 <= steps < STAGE2_STEPS  # after the first validation, before the end: in the middle of the fit
    resumed = text.split(f"job {job} (restart 1)")[1]
    assert "[stage1/adapted] complete, skipped" in resumed and "[pseudo_labels/adapted] complete, skipped" in resumed
    assert "[stage2/sar] complete" not in resumed  # resumed, not redone: Lightning restored the HPC checkpoint
    assert f"Restored all states from the checkpoint at {hpc}" in resumed
    assert "pipeline tiny finished" in resumed
    assert (tmp_path / "slurm" / "tiny" / "slurm.out").resolve() == log.resolve()  # the job's log, from its run folder
    # The W&B runs continued under the job's ids: the interrupted fit's run was written by both job runs.
    for stage in ("stage1/adapted", "pseudo_labels/adapted", "stage2/sar", "maps/sar"):
        assert wandb_ids(tmp_path / "slurm" / "tiny" / stage) == {f"slurm{job}-{stage.replace('/', '-')}"}
    assert len(list((stage2 / "wandb").glob("offline-run-*"))) == 2

    # The same outputs as the local run: checkpoints, pseudo-labels, maps and submission, bit for bit.
    left, right = tmp_path / "local" / "tiny", tmp_path / "slurm" / "tiny"
    tensors = {}
    for fit in ("stage1/adapted", "stage2/sar"):
        a, b = (state_dict(run / fit / "checkpoints" / "last.ckpt") for run in (left, right))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), fit
        tensors[fit] = len(a)
    labels = "OpenEarthMap-SAR/train/labels_pl/tiny-adapted"
    assert_same_rasters(tmp_path / "local" / "data" / labels, tmp_path / "slurm" / "data" / labels)
    for kind in ("labels", "soft"):
        assert_same_rasters(left / "maps" / "sar" / kind, right / "maps" / "sar" / kind)
    pngs = sorted(p.name for p in (left / "submission").glob("*.png"))
    assert pngs == sorted(p.name for p in (right / "submission").glob("*.png")) and pngs
    for name in pngs:
        np.testing.assert_array_equal(
            np.asarray(Image.open(left / "submission" / name)), np.asarray(Image.open(right / "submission" / name))
        )
    tiles = len(list((left / "maps" / "sar" / "labels").glob("*.tif")))
    print(
        f"same outputs as the local run: last.ckpt weights {tensors} (tensors), "
        f"pseudo-labels tiny-adapted, maps/sar labels + soft ({tiles} tiles), submission ({len(pngs)} PNGs): identical"
    )
