"""The runner's handling of SLURM's warning signal, with a stand-in for ``scontrol``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sar_pipeline.requeue import RequeueOnSignal

STAGE = """
import signal, sys, time
signal.signal(signal.SIGUSR1, {handler})
print("ready", flush=True)
time.sleep(30)
"""


@pytest.fixture
def scontrol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake ``scontrol`` on PATH that records its arguments; SLURM_JOB_ID 77; SIGUSR1 restored after."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "scontrol"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    previous = signal.getsignal(signal.SIGUSR1)
    yield calls
    signal.signal(signal.SIGUSR1, previous)


def start_stage(handler: str) -> subprocess.Popen:
    stage = subprocess.Popen([sys.executable, "-c", STAGE.format(handler=handler)], stdout=subprocess.PIPE, text=True)
    assert stage.stdout is not None and stage.stdout.readline().strip() == "ready"
    return stage


def test_the_warning_reaches_the_stage_and_the_job_is_requeued_once(scontrol: Path) -> None:
    requeue = RequeueOnSignal(grace=30)
    requeue.install()
    stage = start_stage("lambda *a: sys.exit(75)")  # as a fit does after its checkpoint
    requeue.watch(stage)
    os.kill(os.getpid(), signal.SIGUSR1)
    assert stage.wait(timeout=10) == 75 and requeue.requested
    assert requeue.requeue() == 0 and requeue.requeue() == 0
    assert scontrol.read_text().splitlines() == ["requeue 77"]


def test_a_stage_that_does_not_stop_is_requeued_after_the_grace_time(scontrol: Path) -> None:
    requeue = RequeueOnSignal(grace=0.5)
    requeue.install()
    stage = start_stage("signal.SIG_IGN")
    requeue.watch(stage)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not scontrol.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scontrol.read_text().splitlines() == ["requeue 77"] and stage.poll() is None
    finally:
        stage.kill()
        stage.wait()


def test_the_job_log_is_linked_into_the_claimed_run_folder_and_relinked_on_requeue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sar_pipeline.launch import SLURM_LOG_VARIABLE, link_slurm_log

    run = tmp_path / "run"
    run.mkdir()
    assert link_slurm_log(run) is None and not (run / "slurm.out").exists()  # not under the sbatch script
    for job in ("sar-landcover-7.out", "sar-landcover-8.out"):
        (tmp_path / job).write_text(job)
        monkeypatch.setenv(SLURM_LOG_VARIABLE, str(tmp_path / job))
        assert link_slurm_log(run) == run / "slurm.out"
        assert (run / "slurm.out").read_text() == job
    assert sorted(p.name for p in run.iterdir()) == ["slurm.out"]  # no temporary link left
    (run / "slurm.out").unlink()
    (run / "slurm.out").write_text("the user's own file")
    assert link_slurm_log(run) is None and (run / "slurm.out").read_text() == "the user's own file"
