"""How every command ends on an error about its input: one line, the traceback only when asked for.

An error about the user's input is a :class:`~datamodules.errors.DataError` (a bad file, a refused
output, an unsafe name), an ``OSError`` naming a file, or a ``ValueError``, ``RuntimeError``,
``OSError`` or ``MemoryError`` the project raised on purpose (an invalid option value, a memory
budget). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datamodules.errors import DataError

DEBUG_ENV = "SAR_LANDCOVER_DEBUG"
VERBOSE_FLAG = "--verbose"
HELP_EPILOG = (
    "Outputs are checked before any work: a command writes only into new or empty places or over what "
    "sar-landcover wrote there before, never over its inputs or into a dataset (docs/data_safety.md). "
    "Errors about the input (a bad or missing file, a refused output, an unsafe name, an invalid option value) "
    f"print one line, 'error: <path>: <problem>', and exit with status 1; {VERBOSE_FLAG} (anywhere on the "
    f"command line) or {DEBUG_ENV}=1 shows the traceback."
)
"""The end of every command's help: the output rule and how errors are shown."""
_PROJECT = Path(__file__).resolve().parents[1]
_PACKAGES = (
    "datamodules",
    "lightning_modules",
    "sar_inference",
    "sar_landcover",
    "sar_pipeline",
    "sar_studies",
    "sar_synthetic",
    "sar_tracking",
)


def take_verbose_flag(words: list[str]) -> list[str]:
    """``words`` without ``--verbose``; when it was there, turn on tracebacks (also for child processes)."""
    if VERBOSE_FLAG in words:
        os.environ[DEBUG_ENV] = "1"
    return [w for w in words if w != VERBOSE_FLAG]


def debugging() -> bool:
    """Whether tracebacks were asked for (``--verbose`` or ``SAR_LANDCOVER_DEBUG`` set, not 0)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _raised_by_project(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    where = Path(frames[-1].filename).resolve()
    return any(where.is_relative_to(_PROJECT / package) for package in _PACKAGES)


def one_line(message: str) -> str:
    """A message of several lines (e.g. every problem of a pipeline) as one: ``first rest; rest``."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " ".join([lines[0], "; ".join(lines[1:])]).strip() if lines else message


def input_error_message(error: BaseException) -> str | None:
    """The line to print for an error about the user's input, or None for one that must keep its traceback."""
    if isinstance(error, DataError):
        return one_line(str(error))
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, ValueError | RuntimeError | OSError | MemoryError) and _raised_by_project(error):
        return one_line(str(error))
    return None


def run_with_one_line_errors(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function(*args)``; an error about the input prints one line to stderr and exits with status 1.

    Raises:
        SystemExit: with status 1 after an input error (unless tracebacks were asked for).
    """
    try:
        return function(*args)
    except Exception as error:
        message = input_error_message(error)
        if message is None or debugging():
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
