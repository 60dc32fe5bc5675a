"""W&B lineage of a pipeline stage: what it used and what it produced, as reference artifacts.

Artifacts hold references (``file://`` URIs), never copies: checkpoints and pseudo-label sets stay
where they are. W&B records "used" edges only online; offline, each produced artifact carries the
names of its inputs in its metadata (``derived_from``) so the chain survives ``wandb sync``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


@dataclass(frozen=True)
class ArtifactRef:
    """A W&B artifact that points at a file or folder.

    Attributes:
        name: artifact name (letters, digits, ``-``, ``_``, ``.``).
        type: artifact type, e.g. ``model``, ``pseudo-labels``, ``maps``.
        path: the file or folder it references; empty for the callback's own output: the best
            checkpoint after ``fit``, the prediction folder after ``predict``.
    """

    name: str
    type: str
    path: str = ""


def reference_artifact(ref: ArtifactRef, derived_from: list[str] | None = None) -> Any:
    """A ``wandb.Artifact`` referencing ``ref.path`` without uploading it."""
    import wandb

    artifact = wandb.Artifact(ref.name, type=ref.type, metadata={"derived_from": derived_from or []})
    artifact.add_reference(Path(ref.path).resolve().as_uri(), name=Path(ref.path).name, checksum=False)
    return artifact


def record_lineage(run: Any, produces: ArtifactRef | None, uses: list[ArtifactRef]) -> None:
    """Log ``produces`` as a reference artifact of ``run`` and mark ``uses`` as its inputs.

    Args:
        run: an active ``wandb`` run.
        produces: the stage's output (None: nothing).
        uses: the stage's inputs.
    """
    offline = os.environ.get("WANDB_MODE") == "offline" or getattr(getattr(run, "settings", None), "_offline", False)
    if not offline:
        for ref in uses:
            if Path(ref.path).exists():
                run.use_artifact(reference_artifact(ref))
    if produces is not None:
        run.log_artifact(reference_artifact(produces, [ref.name for ref in uses]))


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
