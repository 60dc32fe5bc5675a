"""Time, peak memory and final validation mIoU of the README's main command on a fresh data root.

Runs ``python cli.py make-demo-data`` and then ``python cli.py fit --config experiments/demo_sar.yaml``
in subprocesses with the data and the run directory under a temporary folder (so the synthetic data
is generated as on a new machine), then prints the wall time of both, the peak resident memory of the
largest process, and the last validation table it printed.

    python benchmarks/demo_fit.py [--config experiments/demo_sar.yaml] [extra CLI arguments ...]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/demo_sar.yaml")
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, str(REPO / "cli.py"), "fit", "--config", str(REPO / args.config),
            "--data.root", f"{tmp}/data", "--trainer.default_root_dir", f"{tmp}/run",
            "--trainer.logger.init_args.save_dir", f"{tmp}/run", "--trainer.enable_progress_bar", "false", *extra,
        ]  # fmt: skip
        generate = [sys.executable, str(REPO / "cli.py"), "make-demo-data", f"--root={tmp}/data", "--progress=false"]
        start = time.perf_counter()
        subprocess.run(generate, capture_output=True, check=True, cwd=REPO)
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"demo failed:\n{result.stderr[-3000:]}")
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    tables = re.findall(r"^val after \d+ steps: mIoU [\d.]+\n(?:  .*\n)+", result.stdout + "\n", flags=re.M)
    print(f"command: python cli.py fit --config {args.config} {' '.join(extra)} (fresh data root)")
    print(f"wall time: {wall:.0f} s (target <= 300 s), peak memory: {peak_gb:.2f} GB (target < 4 GB)")
    print("every validation:", ", ".join(re.findall(r"^val after (\d+ steps: mIoU [\d.]+)", result.stdout, re.M)))
    print("last validation (clean val truth):")
    print(tables[-1] if tables else "no validation table found")


if __name__ == "__main__":
    main()
