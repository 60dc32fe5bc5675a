"""Checkpoint -> predictions -> files, without Lightning: the tensor engine (windows, TTA, ensembles),
checkpoint loading, runtimes and the tools built on them (map, submit, evaluate, select, preview, export).

``from sar_inference import LandCoverMapper`` is the Python API (:mod:`sar_inference.api`).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # Imported on first use only: the package's modules import each other, and the tasks import a few.
    if name == "LandCoverMapper":
        from sar_inference.api import LandCoverMapper

        return LandCoverMapper
    raise AttributeError(f"module 'sar_inference' has no attribute {name!r}")
