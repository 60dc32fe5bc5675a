"""The error every bad input becomes: :class:`DataError`, whose message is ``<path>: <problem>``.

Kept free of heavy imports, so that the command dispatcher and the stage runner can recognise it
without loading rasterio or torch.
"""

from __future__ import annotations

import os
from pathlib import Path

_WORKER_HEADER = "Caught "
"""How torch starts the message of an exception re-raised from a DataLoader worker."""


class DataError(ValueError):
    """An input file or folder is missing, unreadable or not what the caller expects.

    Args:
        path: the file, folder or name at fault.
        problem: what is wrong with it. None only when torch rebuilds the error from a data-loader
            worker's message (``Caught DataError in DataLoader worker ... <traceback>``): the path and
            problem are then read back from the traceback's last line, so the error keeps its one line.
    """

    def __init__(self, path: str | os.PathLike, problem: str | None = None) -> None:
        if problem is None:
            path, problem = _from_worker_message(str(path))
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def _from_worker_message(message: str) -> tuple[str, str]:
    """(path, problem) of a DataError message, or of the traceback torch wraps it in."""
    line = message.rstrip().splitlines()[-1] if message.strip() else message
    if message.startswith(_WORKER_HEADER):
        line = line.split(": ", 1)[1] if ": " in line else line  # drop "datamodules.errors.DataError: "
    path, _, problem = line.partition(": ")
    return path, problem or "invalid input"
