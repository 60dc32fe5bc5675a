"""``make-demo-data``: which layout the synthetic tiles are written in (the demo's, or the real download's replica)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from sar_synthetic.config import SyntheticConfig
from sar_synthetic.layout_writer import generate_demo_data
from sar_synthetic.replica import REPLICA_SETTINGS, generate_replica

Profile = Literal["demo", "dfc2025_replica"]


def make_demo_data(
    root: str | os.PathLike,
    profile: Profile = "demo",
    settings: SyntheticConfig | None = None,
    progress: bool = True,
) -> Path:
    """Write synthetic OpenEarthMap + OpenEarthMap-SAR data under ``root``.

    Args:
        root: destination folder; it must not exist, be empty, or already hold the same profile's data.
        profile: ``demo`` (the miniature: 256 px tiles, labelled val and test, the truth beside the
            noisy labels) or ``dfc2025_replica`` (the real download's layout and tile size: 1024 px,
            val and test SAR only, one OpenEarthMap region without images, the truth outside the
            layout in ``replica_truth/``).
        settings: size, seed and difficulty of the tiles; None: the profile's (``SyntheticConfig()``, or
            1024 px tiles and a few of each for the replica). Given settings replace the profile's
            whole: for a larger replica also give ``--settings.tile_size 1024``.
        progress: show a progress bar over tiles.

    Raises:
        FileExistsError: ``root`` holds something else (it is left untouched).
    """
    if profile == "dfc2025_replica":
        return generate_replica(root, settings or REPLICA_SETTINGS, progress)
    return generate_demo_data(root, settings or SyntheticConfig(), progress)
