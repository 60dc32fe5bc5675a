"""Pool the per-seed scores of several ``stage1_adaptation.py`` runs into one summary with a paired test.

Reads the printed output of each run (its ``seeds [...]`` header and each variant's ``per seed
target:`` values), joins the seeds of every variant present in all runs, and prints each variant's
mean ± standard deviation, the seed-by-seed differences, a two-sided paired t-test and the seeds a
paired test would need to detect the observed mean difference with 80 % power at the 5 % level
(about (2.8 sd / d)^2).

    python benchmarks/pool_stage1_seeds.py run_a.log run_b.log [...]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from scipy import stats

from sar_studies.fit_output import read_run
from sar_studies.statistics import format_mean_std, paired_differences, seed_differences

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", type=Path, nargs="+", help="outputs of stage1_adaptation.py")
    args = parser.parse_args()
    runs = [read_run(path) for path in args.logs]
    seeds = [seed for run_seeds, _ in runs for seed in run_seeds]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"a seed appears in more than one run: {seeds}")
    names = [name for name in runs[0][1] if all(name in scores for _, scores in runs)]
    targets = {name: [v for _, scores in runs for v in scores[name]] for name in names}
    print(f"pooled over seeds {seeds} (target-domain val mIoU):")
    for name, target in targets.items():
        print(f"  {name:<20} {format_mean_std(target)}")
    print("\npaired by seed (target):")
    print("\n".join(paired_differences(targets, seeds)))
    print("\npaired t-test (two-sided) and seeds for 80 % power at the 5 % level:")
    for a, b, diffs in seed_differences(targets):
        mean, spread = statistics.mean(diffs), statistics.stdev(diffs)
        needed = math.ceil((2.8 * spread / mean) ** 2) if mean else "no number of"
        test = stats.ttest_1samp(diffs, 0.0)  # the paired t-test of b against a
        print(f"  {b} - {a}: t = {test.statistic:.2f}, p = {test.pvalue:.2f}; {needed} seeds needed")


if __name__ == "__main__":
    main()
