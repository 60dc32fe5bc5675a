"""Child runs of the studies and benchmarks: their environment side by side, and measured runs.

A measured run records its wall time and the peak memory of its whole process tree: the largest
sum of proportional set sizes (Pss from /proc/<pid>/smaps_rollup: each shared page counted once,
split between the processes sharing it) over the command and all its descendants at one moment
(data-loader workers, DDP ranks, stage processes), sampled every second (reading smaps costs CPU:
sampling every 0.2 s took a third of a core). Summing plain RSS instead would count the libraries
and the copy-on-write pages that forked data-loader workers share with their parent once per process.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sar_tracking.child_processes import environment_with_own_wandb_service

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child_environment(jobs: int) -> dict[str, str]:
    """This process's environment for child runs (each with a W&B service of its own), limited to one
    thread each when ``jobs`` > 1.

    Each run's torch would otherwise start one thread per core, so N runs side by side would ask
    for N times the cores there are.
    """
    env = environment_with_own_wandb_service()
    return env | SINGLE_THREAD if jobs > 1 else env


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss(root: int) -> int:
    """Proportional set size of ``root`` and all its descendants now, in bytes."""
    tree, total, todo = _children(), 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss_bytes(pid)
        todo += tree.get(pid, [])
    return total


@dataclass
class Measured:
    """What a measured run gave."""

    returncode: int
    wall_s: float
    peak_bytes: int
    output: str


def run_measured(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, interval: float = 1.0
) -> Measured:
    """Run ``command`` (output captured), sampling its process tree's memory every ``interval`` s until it exits."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env or environment_with_own_wandb_service(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_pss(process.pid))
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.communicate()[0]
    done.set()
    sampler.join()
    return Measured(process.returncode, time.perf_counter() - start, peak, output)
