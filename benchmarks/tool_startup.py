"""Start-up time of the inference commands (evaluate, map, submit) and whether they import Lightning.

    python benchmarks/tool_startup.py [--repeats 7]

Each command's ``--help`` runs in a fresh interpreter (imports and the option parser, no work), as
the first second of every ``python cli.py map ...`` does. Beside them, in the same run, the
reference: a fresh interpreter that only imports ``lightning.pytorch``. Times are medians of the
repeats; the ratio column is the command's time over that reference. To compare two versions of
the project, run the script once with each on the import path (e.g. ``PYTHONPATH=<old tree>``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = ("evaluate", "map", "submit")
PROBE = """
import sys
from sar_landcover.commands import main
try:
    main([{command!r}, "--help"])
except SystemExit:
    pass
print("LIGHTNING", "lightning" in sys.modules or "lightning.pytorch" in sys.modules, file=sys.stderr)
"""
REFERENCE = "import lightning.pytorch"


def run_once(code: str) -> tuple[float, str]:
    """Wall time of a fresh interpreter running ``code``, and its standard error."""
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, done.stderr


def median_time(code: str, repeats: int) -> tuple[float, str]:
    """Median wall time over ``repeats`` runs (after one warm-up run that fills the file cache)."""
    _, stderr = run_once(code)
    return statistics.median(run_once(code)[0] for _ in range(repeats)), stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    reference, _ = median_time(REFERENCE, repeats)
    print(f"python {sys.version.split()[0]}, {repeats} repeats, medians")
    print(f"{'command':<28}{'seconds':>9}{'ratio':>8}  imports Lightning")
    print(f"{'import lightning.pytorch':<28}{reference:>9.2f}{1.0:>8.2f}  yes (reference)")
    for command in COMMANDS:
        seconds, stderr = median_time(PROBE.format(command=command), repeats)
        imported = "yes" if "LIGHTNING True" in stderr else "no"
        print(f"{command + ' --help':<28}{seconds:>9.2f}{seconds / reference:>8.2f}  {imported}")


if __name__ == "__main__":
    main()
