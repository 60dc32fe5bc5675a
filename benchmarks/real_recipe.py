"""The DFC2025 recipe end to end on the replica of the real download, and the demo: stage times, method vs baseline.

(a) Replica: ``make-demo-data --profile dfc2025_replica`` (1024 px tiles in the download's layout:
val and test SAR only, no val labels), then ``pipeline --config experiments/dfc2025/pipeline.yaml
--config experiments/dfc2025/cpu_smoke.yaml`` (the real recipe with size overrides only) from stage 1
to the submission zip. The download has no test labels, so the pipeline scores nothing; this script
scores the submission (the method's ensemble) and the official baseline's test maps against the
replica's truth, kept outside the layout in ``replica_truth/``. At 4 steps per fit the scores only
show that the chain is wired; the stage times are the point.
(b) Demo: ``pipeline --config experiments/demo.yaml --config experiments/demo_arms.yaml`` (the
method, the demo's CE baseline, the two arms that separate labels from loss, and the official
baseline's recipe, all at the demo's budget on the 256 px miniature) and its evaluation table on the
clean test truth.

    python benchmarks/real_recipe.py [--work DIR] [--skip-demo] [--skip-replica]

``--work DIR`` keeps the data and the runs (a re-run skips what is complete); default: a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sar_inference.evaluation import evaluate
from sar_studies.fit_output import stage_times
from sar_synthetic.replica import TRUTH_DIR

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, str(REPO / "cli.py")]


def run(command: list[str]) -> str:
    """Run a command from the repository, echo it, and return its output (stop on failure)."""
    print("$", " ".join(command[1:]), flush=True)
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{(result.stdout + result.stderr)[-4000:]}")
    return result.stdout + result.stderr


def print_times(output: str, wall: float) -> None:
    """The stage times of a pipeline run, one per line, and their sum against the wall time."""
    times = stage_times(output)
    for stage, seconds in times.items():
        print(f"  {stage:<34}{seconds:8.1f} s")
    print(f"  {'stages (sum)':<34}{sum(times.values()):8.1f} s   wall {wall:.1f} s")


def score(predictions: Path, labels: Path) -> dict:
    """Official mIoU and per-class IoU of a folder of label maps (see ``cli.py evaluate``)."""
    with contextlib.redirect_stdout(sys.stderr):
        return evaluate(str(predictions), str(labels), progress=False)


def replica(work: Path) -> None:
    root, run_dir = work / "replica", work / "replica_run"
    started = time.perf_counter()
    run([*CLI, "make-demo-data", "--root", str(root), "--profile", "dfc2025_replica", "--progress", "false"])
    print(f"  replica written in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    output = run(
        [*CLI, "pipeline", "--config", "experiments/dfc2025/pipeline.yaml", "--config",
         "experiments/dfc2025/cpu_smoke.yaml", "--data_root", str(root), "--run_dir", str(run_dir)]
    )  # fmt: skip
    wall = time.perf_counter() - started
    print("(a) replica of the download, experiments/dfc2025/pipeline.yaml + cpu_smoke.yaml, stage times:")
    print_times(output, wall)
    zip_file = run_dir / "submission" / "submission.zip"
    print(f"  submission: {zip_file} ({zip_file.stat().st_size} bytes)")
    truth = root / TRUTH_DIR / "OpenEarthMap-SAR" / "test" / "labels"
    rows = {
        "method (submission: ensemble of segformer_b5, upernet_convnextv2)": run_dir / "submission",
        "official baseline (maps/official_baseline)": run_dir / "maps" / "official_baseline" / "labels",
    }
    print(f"  test mIoU against the replica's truth ({truth}):")
    for name, folder in rows.items():
        scores = score(folder, truth)
        print(f"  {name:<66} mIoU {scores['mIoU']:.3f}")
    print("  (per-class IoU: the tables printed to stderr by evaluate)")


def demo(work: Path) -> None:
    run_dir, data = work / "demo_run", work / "demo"
    started = time.perf_counter()
    output = run(
        [*CLI, "pipeline", "--config", "experiments/demo.yaml", "--config", "experiments/demo_arms.yaml",
         "--data_root", str(data),
         f"--prepare.init_args.root={data}", "--run_dir", str(run_dir)]
    )  # fmt: skip
    print("(b) demo, experiments/demo.yaml + demo_arms.yaml, stage times:")
    print_times(output, time.perf_counter() - started)
    print((run_dir / "evaluation" / "table.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="folder for data and runs (default: temporary)")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-replica", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if not args.skip_replica:
            replica(work)
        if not args.skip_demo:
            demo(work)


if __name__ == "__main__":
    main()
