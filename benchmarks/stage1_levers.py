"""Which of stage 1's levers make its pseudo-labels better than the official labels, at the demo's budget.

Runs on the work folder of ``benchmarks/demo_pipeline.py`` (``DIR/data`` and one finished demo run
``DIR/seed<N>`` per seed). From the recorded commands of the demo's stage-1 model (``stage1/adapted``
and ``pseudo_labels/adapted``: the labeller adapted for 100 steps with the mean teacher, RAA and the
image weights, predicting with 3 flips) it derives one change at a time:

- fits, from the labeller's weights with the same budget: ``no_raa`` (the mean teacher without RAA)
  and ``source_only`` (100 more supervised steps: what the extra steps alone give);
- predictions of the method's model: ``one_view`` (no flips), ``tta_18`` (the reference's 6 scales x
  3 flips), ``teacher`` (the mean teacher's network predicts, 3 flips); of the labeller:
  ``labeller_flips`` (the official labels' model with 3 flips: TTA without adaptation);
- ``soft_ensemble``: the soft maps of the method's model and of ``no_raa`` summed (two adapted models).

Each set is scored against the clean truth of the training tiles (``cli.py evaluate``), beside the
official labels and the method's own pseudo-labels. The derived runs go to ``DIR/levers/seed<N>/``
and their sets to ``train/labels_pl/seed<N>-lever-<name>``; a set already scored is not run again.

    python benchmarks/stage1_levers.py --work DIR [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sar_inference.evaluation import evaluate  # noqa: E402
from sar_inference.selection import select_pseudo_labels  # noqa: E402
from sar_studies.statistics import mean_and_std  # noqa: E402

SCALES_18 = "--model.init_args.inference.scales=[0.5,0.75,1.0,1.25,1.5,1.75]"

# name -> (what it is, recorded stage it derives from, its extra configs and arguments)
VARIANTS = REPO / "experiments" / "variants"
FITS = {
    "no_raa": ("mean teacher + image weights, no RAA", [f"--config={VARIANTS / 'no_raa.yaml'}"]),
    "source_only": ("100 more supervised steps, no adaptation", [f"--config={VARIANTS / 'source_only.yaml'}"]),
}
PREDICTIONS = {
    "one_view": ("the method's model, one view", "adapted", ["--model.init_args.inference.flips=[none]"]),
    "tta_18": ("the method's model, 6 scales x 3 flips", "adapted", [SCALES_18]),
    "teacher": ("the method's model, the teacher predicts", "adapted", ["--model.init_args.predict_with=teacher"]),
    "labeller_flips": ("the labeller, 3 flips (TTA alone)", "official_labeller", []),
    "no_raa": ("the no-RAA model, 3 flips", "no_raa", []),
    "source_only": ("the source-only model, 3 flips", "source_only", []),
}
ENSEMBLE = ("adapted", "no_raa")


def recorded(run: Path, stage_id: str) -> dict[str, Any]:
    """The command and settings the pipeline recorded for one of its stages."""
    path = run / stage_id / "stage.json"
    if not path.is_file():
        sys.exit(f"{path} not found: run benchmarks/demo_pipeline.py --work first (the demo's run of that seed)")
    return json.loads(path.read_text())


def run_stage(command: list[str], settings: dict[str, Any], folder: Path) -> None:
    """Run a ``cli.py`` fit or predict into ``folder`` with ``settings`` as its last config; its
    settings and log beside it (the tool makes the folder itself)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    config, log_file = folder.with_suffix(".settings.yaml"), folder.with_suffix(".log")
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    with log_file.open("w") as log:
        code = subprocess.run([*command, f"--config={config}"], cwd=REPO, stdout=log, stderr=log)
    if code.returncode != 0:
        sys.exit(f"{' '.join(command)} failed; see {log_file}")


def recorded_command(stage: dict[str, Any], extra: list[str]) -> list[str]:
    """A recorded stage's command without its runner settings (the last config), with ``extra`` added."""
    return [*stage["command"][:-1], *extra]


def fit(run: Path, work: Path, name: str, extra: list[str]) -> Path:
    """Fit a variant of the method's stage-1 model (same start, data and budget); its last checkpoint."""
    folder = work / "fit" / name
    last = folder / "checkpoints" / "last.ckpt"
    if not last.is_file():
        stage = recorded(run, "stage1/adapted")
        settings = {
            "seed_everything": stage["settings"]["seed_everything"],
            "trainer": {"default_root_dir": str(folder), "logger": False},
            "data": stage["settings"]["data"],
            "model": stage["settings"]["model"],  # the labeller's weights
            "checkpoint": {"dirpath": str(folder / "checkpoints")},
            "last_checkpoint": {"dirpath": str(folder / "checkpoints")},
        }
        run_stage(recorded_command(stage, extra), settings, folder)
    return last


def predict(run: Path, work: Path, set_name: str, checkpoint: Path, extra: list[str]) -> None:
    """Write the pseudo-label set ``set_name`` with the method's prediction command and ``extra``."""
    stage = recorded(run, "pseudo_labels/adapted")
    settings = {
        "seed_everything": stage["settings"]["seed_everything"],
        "trainer": {
            "default_root_dir": str(work / "predict" / set_name),
            "logger": False,
            "callbacks": [{"class_path": "lightning_modules.prediction_writer.TileWriter"}],
        },
        "data": {"init_args": {**stage["settings"]["data"]["init_args"], "pseudo_label_set": set_name}},
        "ckpt_path": str(checkpoint),
    }
    run_stage(recorded_command(stage, extra), settings, work / "predict" / set_name)


def score(data: Path, set_name: str, scores: Path) -> dict[str, Any]:
    """Scores of a label set against the clean truth of the training tiles."""
    if not scores.is_file():
        train = data / "OpenEarthMap-SAR" / "train"
        folder = train / "labels" if set_name == "official" else train / "labels_pl" / set_name
        with contextlib.redirect_stdout(io.StringIO()):  # its table: the summary prints every set's
            evaluate(str(folder), str(train / "labels_truth"), str(scores), progress=False, only_predicted=True)
    return json.loads(scores.read_text())


def seed_scores(work_dir: Path, seed: int) -> dict[str, dict[str, Any]]:
    """Every lever's pseudo-label set of one seed, scored: name -> scores."""
    run, data = work_dir / f"seed{seed}", work_dir / "data"
    work = work_dir / "levers" / f"seed{seed}"
    (work / "scores").mkdir(parents=True, exist_ok=True)
    prefix = f"seed{seed}"
    checkpoints = {
        "adapted": Path(recorded(run, "pseudo_labels/adapted")["settings"]["ckpt_path"]),
        "official_labeller": run / "stage1" / "official_labeller" / "checkpoints" / "last.ckpt",
    }
    sets = {"official": "official", "method": f"{prefix}-adapted"}
    for name, (_, extra) in FITS.items():
        started = time.perf_counter()
        checkpoints[name] = fit(run, work, name, extra)
        print(f"seed {seed}: fit {name} {time.perf_counter() - started:.0f} s", flush=True)
    for name, (_, source, extra) in PREDICTIONS.items():
        set_name = f"{prefix}-lever-{name}"
        if not (work / "scores" / f"{name}.json").is_file():
            started = time.perf_counter()
            predict(run, work, set_name, checkpoints[source], extra)
            print(f"seed {seed}: predict {name} {time.perf_counter() - started:.0f} s", flush=True)
        sets[name] = set_name
    ensemble = f"{prefix}-lever-soft_ensemble"
    if not (work / "scores" / "soft_ensemble.json").is_file():
        voters = [sets["method"], sets[ENSEMBLE[1]]]
        select_pseudo_labels(str(data), voters, ensemble, mode="soft_ensemble", progress=False)
    sets["soft_ensemble"] = ensemble
    return {name: score(data, set_name, work / "scores" / f"{name}.json") for name, set_name in sets.items()}


def describe(name: str) -> str:
    known = {"official": "the official labels (the labeller, one view)", "method": "the method's pseudo-labels",
             "soft_ensemble": f"soft ensemble of {ENSEMBLE[0]} and {ENSEMBLE[1]}"}  # fmt: skip
    return known.get(name) or PREDICTIONS[name][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="the --work folder of benchmarks/demo_pipeline.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work_per_seed", action="store_true",
                        help="the runs are in DIR<seed>: one demo_pipeline.py --work folder per seed")  # fmt: skip
    args = parser.parse_args()
    per_seed = {s: seed_scores(Path(f"{args.work}{s}" if args.work_per_seed else args.work), s) for s in args.seeds}
    names = list(per_seed[args.seeds[0]])
    classes = list(per_seed[args.seeds[0]]["official"]["IoU"])
    print(f"pseudo-label mIoU against the train truth, seeds {args.seeds} (mean ± standard deviation):")
    header = "| set | what it is | mIoU per seed | mean ± std | vs official (paired) | vs method (paired) | "
    print(header + " | ".join(classes) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(classes))
    for name in names:
        values = [per_seed[s][name]["mIoU"] for s in args.seeds]
        gains = [
            [v - per_seed[s][ref]["mIoU"] for s, v in zip(args.seeds, values, strict=True)]
            for ref in ("official", "method")
        ]
        mean, std = mean_and_std(values)
        paired = [f"{sum(g) / len(g):+.3f}" for g in gains]
        per_class = [sum(per_seed[s][name]["IoU"][c] for s in args.seeds) / len(args.seeds) for c in classes]
        cells = [name, describe(name), " / ".join(f"{v:.3f}" for v in values), f"{mean:.3f} ± {std:.3f}", *paired]
        print("| " + " | ".join(cells) + " | " + " | ".join(f"{v:.3f}" for v in per_class) + " |")


if __name__ == "__main__":
    main()
