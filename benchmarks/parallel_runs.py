"""The environment of child runs that train side by side, one per core."""

from __future__ import annotations

import os

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child_environment(jobs: int) -> dict[str, str]:
    """This process's environment for child runs, limited to one thread each when ``jobs`` > 1.

    Each run's torch would otherwise start one thread per core, so N runs side by side would ask
    for N times the cores there are.
    """
    return {**os.environ, **SINGLE_THREAD} if jobs > 1 else dict(os.environ)
