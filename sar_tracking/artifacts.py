"""W&B reference artifacts: what a pipeline stage used and produced, recorded without uploading.

Artifacts hold references (``file://`` URIs), never copies: checkpoints and pseudo-label sets stay
where they are. W&B records "used" edges only online; offline, each produced artifact carries the
names of its inputs in its metadata (``derived_from``) so the chain survives ``wandb sync``.
No Lightning import here: the stage runner uses this module too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
