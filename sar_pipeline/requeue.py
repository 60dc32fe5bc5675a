"""SLURM's warning signal in the stage runner: the running stage stops at a safe point, the job is requeued.

``sbatch --signal=B:USR1@90`` sends SIGUSR1 to the batch script, which is the runner. The runner
passes it on to the running stage (``srun`` hands it to every task): a fit saves
``hpc_ckpt_<n>.ckpt`` after its current step and exits (``CheckpointOnSignal``), a predict or tool
stage just ends (predict resumes at the first tile it had not written). When the stage has exited,
or after ``grace`` seconds if it has not, the runner requeues the job with ``scontrol requeue``;
the requeued job keeps its id, hence its run folder and W&B ids, and the runner skips what is done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from types import FrameType


class RequeueOnSignal:
    """Catch ``signum`` in the runner, pass it on to the running stage, requeue the SLURM job.

    Args:
        grace: seconds the stage has to save and exit before the job is requeued anyway (keep it
            below the sbatch ``--signal`` lead time, so the requeue comes before the time limit).
        signum: the warning signal.
    """

    def __init__(self, grace: float, signum: signal.Signals = signal.SIGUSR1) -> None:
        self.grace = grace
        self.signum = signum
        self.requested = False
        self._stage: subprocess.Popen | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._requeued = False

    def install(self) -> None:
        """Handle the signal from now on (main thread only)."""
        signal.signal(self.signum, self._on_signal)

    def watch(self, process: subprocess.Popen | None) -> None:
        """The stage process the signal is passed to (None once it exited)."""
        self._stage = process

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        print(f"runner: {signal.Signals(signum).name} received: stopping the running stage to requeue", flush=True)
        if self._stage is not None and self._stage.poll() is None:
            self._stage.send_signal(signum)
        if self._timer is None:
            self._timer = threading.Timer(self.grace, self.requeue)
            self._timer.daemon = True
            self._timer.start()

    def requeue(self) -> int:
        """``scontrol requeue`` this job (once); its exit code. SLURM then ends every process of the job."""
        with self._lock:
            if self._requeued:
                return 0
            self._requeued = True
        if self._timer is not None:
            self._timer.cancel()
        job = os.environ.get("SLURM_ARRAY_JOB_ID")
        job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID", "")
        if not job:
            print("runner: no SLURM_JOB_ID: nothing to requeue; run the same command again to resume", flush=True)
            return 1
        code = subprocess.call(["scontrol", "requeue", job])
        if code == 0:
            print(f"runner: requeued job {job}; its next start resumes this run", flush=True)
        else:
            print(f"runner: `scontrol requeue {job}` failed ({code}); submit the job again to resume", flush=True)
        return code
