"""``python cli.py pipeline-report``: the evaluation table of a pipeline run.

Scores every stage-2 model's test maps and the submission on the test labels with the official
metric, and, when the data has clean training truth (the synthetic demo's ``train/labels_truth``),
the quality of the label sets stage 2 learned from (and of the demo's ``train/labels_optical_date``,
what the optical partners show: the best any optical labeller could do).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datamodules.classes import CLASS_NAMES
from datamodules.layout import OEM_SAR_DIR, check_name
from datamodules.output_safety import Output, check_outputs
from datamodules.rasters import DataError, atomic_output
from sar_inference.evaluation import evaluate

TRUTH = "labels_truth"
OPTICAL_DATE = "labels_optical_date"
"""What the synthetic demo's optical partners show (a perfect optical labeller's labels), when present."""


def _row(name: str, scored_on: str, scores: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "scored_on": scored_on, "mIoU": scores["mIoU"], "per_class": scores["IoU"]}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table: what, scored on, mIoU, then per-class IoU."""
    classes = [name.replace(" ", "_") for name in CLASS_NAMES[1:]]
    header = ["what", "scored on", "mIoU", *classes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["name"], row["scored_on"], _cell(row["mIoU"]), *[_cell(row["per_class"].get(c)) for c in classes]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pipeline_report(run_dir: str, data_root: str, output: str, label_sets: list[str] | None = None) -> Path:
    """Write ``<output>/scores.json`` and ``<output>/table.md`` for a pipeline run, and print the table.

    Args:
        run_dir: the pipeline's run folder (``maps/<model>/labels`` and ``submission/`` are scored).
        data_root: folder holding ``OpenEarthMap-SAR/`` with ``test/labels``.
        output: folder of the report.
        label_sets: training label folders under ``train/`` (``labels``, ``labels_pl/<set>``) to score
            against ``train/labels_truth`` when that exists (tiles missing from a set are not scored).

    Returns:
        The report folder.

    Raises:
        OutputRefusedError: ``output`` may not be written (see :mod:`datamodules.output_safety`).
        UnsafeNameError: a label folder that would leave ``train/``.
        DataError: no test labels, or nothing to score.
    """
    run, sar_root = Path(run_dir), Path(data_root) / OEM_SAR_DIR
    test_labels = sar_root / "test" / "labels"
    sets = [
        sar_root / "train" / Path(*(check_name(p, "label folder") for p in Path(n).parts)) for n in label_sets or []
    ]
    inputs = [*(run / "maps").glob("*/labels"), run / "submission", test_labels, *sets]
    check_outputs("pipeline-report", [Output(output, "folder", "--output")], inputs=inputs)
    if not test_labels.is_dir():
        raise DataError(test_labels, "no test labels to score the maps against")
    rows = []
    for maps in sorted((run / "maps").glob("*/labels")):
        rows.append(_row(f"maps/{maps.parent.name}", "test", evaluate(str(maps), str(test_labels), progress=False)))
    if (run / "submission").is_dir():
        rows.append(_row("submission", "test", evaluate(str(run / "submission"), str(test_labels), progress=False)))
    if not rows:
        raise DataError(run, "no maps/<model>/labels and no submission/ to score")
    truth = sar_root / "train" / TRUTH
    if truth.is_dir():
        ceiling = sar_root / "train" / OPTICAL_DATE  # labels of the optical date: what the labeller could reach
        extra = [(OPTICAL_DATE, ceiling)] if ceiling.is_dir() else []
        for name, folder in [*zip(label_sets or [], sets, strict=True), *extra]:
            scores = evaluate(str(folder), str(truth), progress=False, only_predicted=True)
            rows.append(_row(f"train/{name}", "train truth", scores))
    table = markdown_table(rows)
    out = Path(output)
    with atomic_output(out / "table.md") as tmp:
        tmp.write_text(table + "\n")
    with atomic_output(out / "scores.json") as tmp:
        tmp.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"evaluation of {run} (official metric: mIoU over classes 1..8)\n{table}")
    return out
