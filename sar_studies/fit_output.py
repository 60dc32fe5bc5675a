"""Scores and times read back from the printed output of fits, of the pipeline runner and of the stage-1 benchmark."""

from __future__ import annotations

import ast
import re
from pathlib import Path


def stage_times(output: str) -> dict[str, float]:
    """Seconds of each stage from the ``[stage] done in X s`` lines of the pipeline runner's output."""
    return {m[0]: float(m[1]) for m in re.findall(r"^\[([^\]]+)\] done in ([\d.]+) s", output, flags=re.M)}


def final_scores(stdout: str) -> dict[str, float]:
    """Last printed mIoU of each validation set (``val`` = target domain, ``val_source``), and the
    last per-class IoU of the target as ``val/<class>``."""
    scores: dict[str, float] = {}
    for name, value, table in re.findall(
        r"^(val\w*) after \d+ steps: mIoU ([\d.]+)\n((?:  .+\n?)*)", stdout, flags=re.M
    ):
        scores[name] = float(value)
        if name == "val":
            for cls, iou in re.findall(r"^  (\S.*?)\s+([\d.]+|nan)$", table, flags=re.M):
                scores[f"val/{cls}"] = float(iou)
    return scores


def read_run(path: Path) -> tuple[list[int], dict[str, list[float]]]:
    """The seeds of one run's output and each variant's per-seed target scores.

    Raises:
        ValueError: the file is not the output of ``stage1_adaptation.py``.
    """
    text = path.read_text()
    header = re.search(r"^stage 1 on .*seeds (\[[\d, ]+\])$", text, flags=re.M)
    variants = re.findall(r"^(\S.*?)\s+target [\d.]+ ± [\d.]+ .*\(per seed target: ([\d., ]+)\)$", text, flags=re.M)
    if header is None or not variants:
        raise ValueError(
            f"{path}: not the output of benchmarks/stage1_adaptation.py (no seeds header or variant lines)"
        )
    seeds = ast.literal_eval(header.group(1))
    scores = {name: [float(v) for v in values.split(",")] for name, values in variants}
    for name, values in scores.items():
        if len(values) != len(seeds):
            raise ValueError(f"{path}: {name} has {len(values)} scores for {len(seeds)} seeds")
    return seeds, scores
