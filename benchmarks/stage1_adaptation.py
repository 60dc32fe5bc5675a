"""Does stage 1's domain adaptation help on the generated data? Source-only vs mean teacher vs + RAA.

Each variant trains ``experiments/demo_stage1.yaml`` (same steps, batch and crops: the same
budget) with several training seeds on one generated dataset, and reports the final target-domain
validation mIoU (OEM-SAR optical, clean truth) and the source validation mIoU (OEM val), as mean
and standard deviation over seeds, then the per-class target IoU of each variant (mean over seeds).
``--data-args`` are passed to ``cli.py make-demo-data`` (e.g. ``"--settings.domain_gap 0"``).
With ``--jobs N`` N runs train at once, each on one thread. Since the seed noise of short runs can
exceed the variants' differences, each variant is also compared with the others seed by seed.
The variants "mean teacher + RAA (area)" (pre-filtered RAA downsampling) and "mean teacher + RAA
(before rescale)" (RAA on the whole tile before the rescale and crop; the default is the reference's
order, after the first crop) run only when named.

    python benchmarks/stage1_adaptation.py [--seeds 0 1 2] [--steps 300] [--variants ...] [--jobs 1]
        [--data-args "..."] [extra CLI arguments ...]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sar_studies.fit_output import final_scores
from sar_studies.processes import child_environment
from sar_studies.statistics import format_mean_std, paired_differences

REPO = Path(__file__).resolve().parents[1]

VARIANTS: dict[str, list[str]] = {  # the variant fragments of experiments/variants/, or arguments
    "source-only": ["--config", str(REPO / "experiments/variants/source_only.yaml")],
    "mean teacher": ["--config", str(REPO / "experiments/variants/no_raa.yaml")],
    "mean teacher + RAA": [],
    "mean teacher + RAA (area)": ["--data.init_args.raa.down_interpolation", "area"],
    "mean teacher + RAA (before rescale)": ["--data.init_args.raa.position", "before_rescale"],
}
DEFAULT_VARIANTS = ["source-only", "mean teacher", "mean teacher + RAA"]


def run(
    variant: list[str], seed: int, steps: int, root: Path, out: Path, extra: list[str], env: dict[str, str]
) -> dict[str, float]:
    """Train one variant with one seed in the environment ``env`` and return its final scores."""
    command = [
        sys.executable, str(REPO / "cli.py"), "fit", "--config", str(REPO / "experiments/demo_stage1.yaml"),
        "--seed_everything", str(seed), "--data.init_args.root", str(root),
        "--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps),
        "--trainer.default_root_dir", str(out), "--trainer.logger.init_args.save_dir", str(out),
        "--trainer.enable_progress_bar", "false", *variant, *extra,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    if result.returncode != 0:
        sys.exit(f"run failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return final_scores(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS)
    parser.add_argument("--data-args", default="", help="extra arguments of make-demo-data, one string")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each on one thread when more than 1")
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        subprocess.run([sys.executable, str(REPO / "cli.py"), "make-demo-data", "--root", str(root),
                        "--progress", "false", *shlex.split(args.data_args)], check=True, cwd=REPO)  # fmt: skip
        print(f"stage 1 on the default synthetic data, {args.steps} steps per run, seeds {args.seeds}", flush=True)
        env = child_environment(args.jobs)
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {
                (name, seed): pool.submit(
                    run, VARIANTS[name], seed, args.steps, root, Path(tmp) / f"run_{i}_{seed}", extra, env
                )
                for seed in args.seeds  # seed-major: an interrupted study still has whole seeds
                for i, name in enumerate(args.variants)
            }
            rows, per_class_runs = [], []
            for name in args.variants:
                scores = [futures[name, seed].result() for seed in args.seeds]
                target = [s["val"] for s in scores]
                source = [s["val_source"] for s in scores]
                rows.append((name, target, source))
                per_class_runs.append(scores)
                print(f"{name:<20} target {format_mean_std(target)}  source {format_mean_std(source)}  "
                      f"(per seed target: {', '.join(f'{v:.3f}' for v in target)})", flush=True)  # fmt: skip
    print("\n| variant | target-domain val mIoU | source val mIoU |\n|---|---|---|")
    for name, target, source in rows:
        print(f"| {name} | {format_mean_std(target)} | {format_mean_std(source)} |")
    if len(args.seeds) > 1:
        print("\npaired by seed (target):")
        print("\n".join(paired_differences({name: target for name, target, _ in rows}, args.seeds)))
    classes = [key for key in per_class_runs[0][0] if key.startswith("val/")] if per_class_runs else []
    if classes:
        print("\nper-class target IoU, mean over seeds:")
        print(f"{'variant':<20} " + " ".join(f"{c.split('/', 1)[1][:10]:>10}" for c in classes))
        for (name, *_), runs in zip(rows, per_class_runs, strict=True):
            means = [statistics.mean(r.get(c, float("nan")) for r in runs) for c in classes]
            print(f"{name:<20} " + " ".join(f"{m:>10.3f}" for m in means))


if __name__ == "__main__":
    main()
