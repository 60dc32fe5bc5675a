"""Save a resumable checkpoint at the next step boundary when a signal arrives, then end the fit.

SLURM warns a job before its time limit with a signal (``sbatch --signal``); the stage runner
forwards it to the running fit. Lightning's own SLURM handler saves inside the signal handler, at
whatever point of the step the signal lands (between the optimiser step and the EMA teacher
update, say) and, under DDP, runs the save's barrier while another rank may be inside a gradient
all-reduce. This callback only records the signal; after the next training step, when every rank
agrees one arrived, it saves ``<default_root_dir>/hpc_ckpt_<n>.ckpt`` (Lightning's name for it, so
resuming code finds it) and exits with :data:`EXIT_CODE`, so the fit continues from exactly that
step.
"""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

EXIT_CODE = 75
"""``EX_TEMPFAIL``: the fit stopped to be resumed, not because it failed."""
SignalName = Literal["SIGUSR1", "SIGUSR2", "SIGTERM"]


def next_hpc_checkpoint(folder: Path) -> Path:
    """``hpc_ckpt_<n+1>.ckpt`` after the highest ``n`` in ``folder``."""
    found = (re.fullmatch(r"hpc_ckpt_(\d+)\.ckpt", p.name) for p in folder.glob("hpc_ckpt_*.ckpt"))
    numbers = [int(m.group(1)) for m in found if m]
    return folder / f"hpc_ckpt_{max(numbers, default=0) + 1}.ckpt"


class CheckpointOnSignal(L.Callback):
    """On ``signal_name``, checkpoint after the current training step and exit with :data:`EXIT_CODE`.

    Args:
        signal_name: the signal to act on (SLURM's warning signal is ``SIGUSR1`` by default).
    """

    def __init__(self, signal_name: SignalName = "SIGUSR1") -> None:
        self.signum = signal.Signals[signal_name]
        self.received = False
        self._previous: signal.Handlers | None = None

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received = True

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(self.signum)
        if current != self._record:
            self._previous = current
            signal.signal(self.signum, self._record)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._install()  # from the start: a signal during sanity checking waits for the first step

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install()  # again, over the handler Lightning installs for SLURM's auto-requeue

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._install()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        # Every rank takes part in the vote at every step: ranks may see the signal at different steps.
        if not trainer.strategy.reduce_boolean_decision(self.received, all=False):
            return
        path = Path(trainer.strategy.broadcast(str(next_hpc_checkpoint(Path(trainer.default_root_dir)))))
        trainer.save_checkpoint(path)
        rank_zero_info(f"{self.signum.name} received: saved {path} after step {trainer.global_step}, stopping")
        raise SystemExit(EXIT_CODE)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(self.signum, self._previous)
            self._previous = None
