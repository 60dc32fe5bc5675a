"""The environment of child runs that train side by side, one per core."""

from __future__ import annotations

import os

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child_environment(jobs: int) -> dict[str, str]:
    """This process's environment for child runs, limited to one thread each when ``jobs`` > 1.

    Several small runs on one thread each beat one run at a time on all cores: the forward of a
    small crop does not keep two cores busy, and two runs sharing cores slow each other down.
    """
    return {**os.environ, **SINGLE_THREAD} if jobs > 1 else dict(os.environ)
