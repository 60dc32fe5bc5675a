"""The W&B lineage callback of fit and predict stages (see :mod:`sar_tracking.artifacts`)."""

from __future__ import annotations

import os
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from sar_tracking.artifacts import ArtifactRef, record_lineage


class ArtifactLineage(Callback):
    """At the end of ``fit`` or ``predict``, records the stage's inputs and output in its W&B run.

    Rank 0 only; a no-op without a W&B logger or with ``WANDB_MODE=disabled``.

    Args:
        produces: the output artifact; its ``path`` defaults to the best checkpoint (fit) or the
            datamodule's prediction folder (predict).
        uses: input artifacts (a stage-1 checkpoint, a pseudo-label set, ...).
    """

    def __init__(self, produces: ArtifactRef | None = None, uses: list[ArtifactRef] | None = None) -> None:
        super().__init__()
        self.produces = produces
        self.uses = list(uses or [])

    def _run(self, trainer: L.Trainer) -> Any:
        if not trainer.is_global_zero or os.environ.get("WANDB_MODE") == "disabled":
            return None
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                return logger.experiment
        return None

    def _record(self, trainer: L.Trainer, default_path: str | None) -> None:
        run = self._run(trainer)
        if run is None:
            return
        produces = self.produces
        if produces is not None and not produces.path:
            if not default_path:
                raise RuntimeError(f"ArtifactLineage: no path known for artifact {produces.name!r}")
            produces = ArtifactRef(produces.name, produces.type, default_path)
        record_lineage(run, produces, self.uses)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        callback = trainer.checkpoint_callback
        self._record(trainer, getattr(callback, "best_model_path", None) or None)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dirs = trainer.datamodule.prediction_dirs() if hasattr(trainer.datamodule, "prediction_dirs") else None
        self._record(trainer, str(dirs[0]) if dirs else None)
