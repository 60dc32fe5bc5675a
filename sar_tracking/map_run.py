"""A W&B run for a mapped scene: its class shares (table and summary) and its preview image.

Offline by default, like every W&B run of this project: online only when ``WANDB_MODE=online`` or
``WANDB_API_KEY`` is set; ``wandb sync`` uploads an offline run later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.classes import BACKGROUND, CLASS_NAMES


@dataclass(frozen=True)
class MapTracking:
    """Whether and where ``map`` logs the scene it mapped to W&B."""

    log: bool = False
    """Log the class shares and the preview (when one is written) to a W&B run."""
    project: str = "sar-landcover"
    """W&B project."""
    entity: str | None = None
    """W&B entity (team or user); None: the default one."""
    name: str | None = None
    """Run name (default: the map's file name)."""
    dir: str | None = None
    """Folder W&B writes its run into (default: the map's folder)."""


def class_shares(counts: np.ndarray) -> dict[str, float]:
    """Share of each class 1..8 in the mapped area, and of no data (value 0) in the whole scene."""
    total = int(counts.sum())
    mapped = total - int(counts[BACKGROUND])
    shares = {CLASS_NAMES[i]: (int(counts[i]) / mapped if mapped else 0.0) for i in range(1, len(CLASS_NAMES))}
    return {**shares, "no data": int(counts[BACKGROUND]) / total if total else 0.0}


def log_map(settings: MapTracking, scene: Path, output: Path, counts: np.ndarray, preview: str | None) -> None:
    """One W&B run (job type ``map``): the class shares as a table and in the summary, the preview as an image."""
    import wandb

    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    run = wandb.init(
        project=settings.project,
        entity=settings.entity,
        name=settings.name or output.name,
        job_type="map",
        dir=settings.dir or str(output.parent),
        mode=mode,
        config={"scene": str(scene), "map": str(output)},
        settings=wandb.Settings(silent=True),
    )
    try:
        shares = class_shares(counts)
        pixels = [*counts[1:].tolist(), int(counts[BACKGROUND])]
        rows = [[name, n, share] for (name, share), n in zip(shares.items(), pixels, strict=True)]
        table = wandb.Table(columns=["class", "pixels", "share"], data=rows)
        media = {"map/class_shares": table}
        if preview:
            media["map/preview"] = wandb.Image(str(preview), caption=f"{scene.name}: SAR | classes")
        run.log(media)
        run.summary.update({f"map/share/{name}": share for name, share in shares.items()})
    finally:
        run.finish()
