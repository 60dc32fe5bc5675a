"""The demo pipeline (the README's main command) on a fresh data root: time, memory, scores, runner overhead.

For each seed, runs ``python cli.py pipeline --config experiments/demo.yaml`` with its own run
folder (the first run generates the data, as on a new machine; later seeds reuse it) and prints:
wall time, peak memory of the whole process tree, the per-stage times, the evaluation table on the
clean test truth, and the runner's overhead. The overhead is the time that is not stage work:
the runner's own time (total minus the stage processes) plus the start-up of every stage process
(interpreter, imports and config parsing: measured by running each stage kind's command with
``--help``, which imports and builds the parser but does no work). Stage-2 fit-and-map chains that
run side by side (``launch.parallel``) count with their longest chain only: the critical path.

    python benchmarks/demo_pipeline.py [--seeds 0 1 2] [--config experiments/demo.yaml ...] [--work DIR]
        [--heldout] [pipeline args ...]

``--work DIR`` keeps the data (``DIR/data``) and the runs (``DIR/seed<N>``) so that seeds can be run in
separate invocations on the same data; the summary covers every seed run found there. Several
``--config`` files are applied in order (e.g. ``experiments/demo_arms.yaml`` after the demo adds the
stage-2 arms that separate the loss from the labels). ``--heldout`` generates the data with
``HELDOUT`` instead of the defaults the demo was calibrated on: another seed and another mix of the
SAR noise and of the differences between the optical and SAR acquisitions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sar_studies.fit_output import stage_times
from sar_studies.processes import run_measured
from sar_studies.statistics import format_mean_std

REPO = Path(__file__).resolve().parents[1]

CLI = [sys.executable, str(REPO / "cli.py")]

HELDOUT = {"seed": 11, "speckle_looks": 1.5, "changed_objects": 0.1, "seasonal_swap": 0.2, "optical_shift_max": 1}
"""The held-out generator settings (``SyntheticConfig`` fields), never used to calibrate the demo."""


def startup_seconds(subcommand: str, repeats: int = 3) -> float:
    """Median time of ``cli.py <subcommand> --help``: interpreter, imports and parser, no work."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([*CLI, subcommand, "--help"], capture_output=True, check=True, cwd=REPO)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def critical_path(times: dict[str, float], parallel: bool) -> list[str]:
    """The stages on the pipeline's critical path: every stage when stages run one at a time; with
    side-by-side stage-2 chains (a model's ``stage2/X`` then ``maps/X``), only the longest chain of them."""
    chained = [s for s in times if s.split("/", 1)[0] in ("stage2", "maps")]
    if not parallel or not chained:
        return list(times)
    chains: dict[str, list[str]] = {}
    for stage in chained:
        chains.setdefault(stage.split("/", 1)[1], []).append(stage)
    longest = max(chains.values(), key=lambda chain: sum(times[s] for s in chain))
    return [s for s in times if s not in chained or s in longest]


def stage_subcommands(output: str) -> dict[str, str]:
    """The ``cli.py`` subcommand each stage ran."""
    return dict(re.findall(r"^\[([^\]]+)\] \S+ \S+cli\.py (\S+)", output, flags=re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", nargs="+", default=["experiments/demo.yaml"])
    parser.add_argument("--heldout", action="store_true", help=f"generate the data with {HELDOUT}")
    parser.add_argument("--work", default=None, help="folder for the data and the runs (default: a temporary one)")
    args, extra = parser.parse_known_args()
    configs = [f"--config={REPO / c}" for c in args.config]
    if args.heldout:
        extra = [*(f"--prepare.init_args.settings.{k}={v}" for k, v in HELDOUT.items()), *extra]
        print(f"held-out generator settings: {HELDOUT}")
    rows: dict[str, list[float]] = {}
    overheads = []
    with tempfile.TemporaryDirectory() if args.work is None else contextlib.nullcontext(args.work) as tmp:
        for seed in args.seeds:
            # The demo prepares (generates and labels) its data only into the root its preparation names.
            command = [*CLI, "pipeline", *configs, f"--data_root={tmp}/data",
                       f"--prepare.init_args.root={tmp}/data", f"--run_dir={tmp}/seed{seed}", f"--seed={seed}",
                       *extra]  # fmt: skip
            run = run_measured(command, cwd=REPO)
            if run.returncode != 0:
                sys.exit(f"seed {seed}: pipeline failed\n{run.output[-4000:]}")
            times, subcommands = stage_times(run.output), stage_subcommands(run.output)
            # a stage run side by side prints where its output goes instead of showing it
            path = critical_path(times, parallel="] output: " in run.output)
            startups = {sub: startup_seconds(sub) for sub in set(subcommands.values())}
            startup_total = sum(startups[subcommands[stage]] for stage in path)
            runner_own = run.wall_s - sum(times[stage] for stage in path)
            overhead = (runner_own + startup_total) / run.wall_s
            overheads.append(overhead)
            print(f"seed {seed}: wall {run.wall_s:.0f} s (target <= 600 s), peak memory of the process tree (PSS) "
                  f"{run.peak_bytes / 1024**3:.2f} GB (target <= 6 GB)")  # fmt: skip
            print("  stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
            print(f"  runner overhead: own {runner_own:.1f} s + {len(path)} stage start-ups {startup_total:.1f} s "
                  f"= {100 * overhead:.1f} % of the wall time (target <= 10 %)")  # fmt: skip
            print((Path(tmp) / f"seed{seed}" / "evaluation" / "table.md").read_text())
        seeds = sorted(int(p.parent.parent.name[4:]) for p in Path(tmp).glob("seed*/evaluation/scores.json"))
        for seed in seeds:
            scores = json.loads((Path(tmp) / f"seed{seed}" / "evaluation" / "scores.json").read_text())
            for row in scores["rows"]:
                name = row["name"].replace(f"seed{seed}-", "<run>-")  # a set is named after its run
                rows.setdefault(f"{name} ({row['scored_on']})", []).append(row["mIoU"])
    print(f"over seeds {seeds} (mean ± standard deviation of mIoU):")
    for name, values in rows.items():
        per_seed = ", ".join(f"{v:.3f}" for v in values)
        print(f"  {name:<40} {format_mean_std(values)}  (per seed: {per_seed})")
    print(f"runner overhead: median {100 * statistics.median(overheads):.1f} % of the wall time")


if __name__ == "__main__":
    main()
