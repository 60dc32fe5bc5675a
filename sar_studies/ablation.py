"""The paper's ablations in miniature (docs/method.md section 6), generated from one base pipeline.

Every variant is a model of an ordinary pipeline (``cli.py pipeline``), derived in code from the
base pipeline's stage-1 and stage-2 models, so stages shared between variants run once per seed:

- stage 1: source-only, mean teacher, mean teacher + RAA (the method), and the method with the
  hard pixel threshold or no weighting instead of the threshold-free image weights, with one-view
  pseudo-labels instead of the base model's flips, and from random weights instead of the base
  model's ``init_from`` (the demo's stage 1 starts from the official labeller, so source-only is the
  labeller trained on for as many steps as the adapted variants);
- stage 2 (on the method's pseudo-labels unless said): SCE + Lovasz (the method), CE, SCE alone,
  the official labels (with SCE + Lovasz, and with CE: the contest baseline), the agreement of
  two stage-1 models (mean teacher with and without RAA), a larger encoder (ResNet-34), and one
  SAR model per stage-1 variant;
- test time: a single view, TTA (scales x flips) and the ensemble of two SAR models, all through
  ``submit`` with the same class weights;
- a label-noise sweep of the official labels (data regenerated per level): CE vs SCE + Lovasz.

Two scores per variant, mean ± standard deviation over seeds: the pseudo-labels' mIoU against the
clean truth of the OEM-SAR training tiles, and the SAR map's mIoU on the clean test truth.

The data is the base pipeline's (the demo data, its official labels written by the source-only
labeller, fitted once at the base pipeline's own size); each other run is smaller than the demo's
(crops of 96 px, 150 steps per fit): about 90 minutes on 2 CPU cores for three seeds (with 128 px
crops one seed's main pipeline took ~33 minutes).
The pipelines run ``--jobs`` at a time (default: one per core, each on one thread); the seeds'
main pipelines share one data root, which the first one prepares while the others wait.

    python -m sar_studies.ablation [--seeds 0 1 2] [--out runs/ablation] [--jobs 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from datamodules.output_safety import Output, check_outputs
from sar_demo.official_labels import official_labels_marker
from sar_pipeline.stages import best_checkpoint
from sar_studies.plot import bar_chart
from sar_studies.processes import child_environment
from sar_studies.statistics import mean_and_std
from sar_synthetic.config import SyntheticConfig

REPO = Path(__file__).resolve().parents[1]

CLI = [sys.executable, str(REPO / "cli.py")]


class Change(NamedTuple):
    """What a variant adds to the base pipeline's model: config fragments, then arguments; ``cold``
    drops the base model's ``init_from`` (the network starts from its config's initialisation)."""

    configs: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    cold: bool = False


SAME = Change()
SOURCE_ONLY = Change(configs=("experiments/variants/source_only.yaml",))
NO_RAA = Change(configs=("experiments/variants/no_raa.yaml",))
CE = Change(configs=("experiments/variants/ce_baseline.yaml",))
SCE_ONLY = Change(args=("--model.init_args.loss.lovasz_weight=0",))
LARGER = Change(args=("--model.init_args.network.encoder=resnet34",))

# name -> (what it shows, its change to the base stage-1 model)
STAGE1 = {
    "source_only": ("no adaptation, no RAA", SOURCE_ONLY),
    "mean_teacher": ("mean teacher without RAA", NO_RAA),
    "mt_raa": ("mean teacher + RAA (the method)", SAME),
    "pixel_threshold": (
        "hard pixel threshold instead of image weights",
        Change(args=("--model.init_args.adaptation.weighting=pixel_threshold",)),
    ),
    "no_weighting": ("every pseudo-label weighs 1", Change(args=("--model.init_args.adaptation.weighting=none",))),
    "one_view": (
        "the method's pseudo-labels from one view, no flips",
        Change(args=("--model.init_args.inference.flips=[none]",)),
    ),
    "cold_start": ("the method from random weights, not from the labeller", Change(cold=True)),
}
VOTERS = ["mt_raa", "mean_teacher"]
QUICK_STAGE1 = ("source_only", "mt_raa")
METHOD_SET = "mt_raa"
TEST_TIME = {
    "single_view": "method model, one view",
    "tta": "method model, 3 scales x 3 flips",
    "ensemble_of_two": "method + a second SAR model, summed, class 0 weight 0",
}


def stage2_variants(stage1: list[str], quick: bool) -> dict[str, tuple[str, str, Change]]:
    """name -> (what it shows, label source, its change to the base stage-2 model); a label source is a
    stage-1 variant, ``official`` or ``agreement``."""
    variants = {f"sar_on_{name}": (f"SAR model on the {name} pseudo-labels", name, SAME) for name in stage1}
    variants["ce"] = ("plain CE on the method's pseudo-labels", METHOD_SET, CE)
    variants["sce"] = ("SCE without Lovasz on the method's pseudo-labels", METHOD_SET, SCE_ONLY)
    if quick:
        return variants
    variants["official_sce"] = ("SCE + Lovasz on the official labels", "official", SAME)
    variants["official_ce"] = ("the contest baseline: CE on the official labels", "official", CE)
    variants["agreement"] = (f"agreement of {' and '.join(VOTERS)}", "agreement", SAME)
    variants["larger_encoder"] = ("ResNet-34 SAR encoder on the method's pseudo-labels", METHOD_SET, LARGER)
    return variants


def changed(base_model: dict[str, Any], name: str, change: Change, size_args: list[str]) -> dict[str, Any]:
    """A pipeline model: the base model with a variant's fragments and arguments, at the study's size."""
    model = {
        "name": name,
        "configs": [*base_model["configs"], *change.configs],
        "args": [*base_model.get("args", []), *change.args, *size_args],
    }
    if base_model.get("init_from") and not change.cold:
        model["init_from"] = base_model["init_from"]
    return model


def preparation(base: dict[str, Any], data: Path, settings: dict[str, Any], labeller_args: list[str] | None) -> dict:
    """The base pipeline's data preparation, pointed at ``data`` with ``settings``; its official
    labeller (if any) gets ``labeller_args`` added (after its own), or is dropped when they are None."""
    if "prepare" not in base:
        raise SystemExit("the base pipeline has no 'prepare' step: the study needs generated data with a clean truth")
    init = {**base["prepare"].get("init_args", {}), "root": str(data), "settings": settings}
    labeller = init.pop("official_labeller", None)
    if labeller and labeller_args is not None:
        init["official_labeller"] = {**labeller, "args": [*labeller.get("args", []), *labeller_args]}
    return {"class_path": base["prepare"]["class_path"], "init_args": init}


def study_pipeline(base: dict[str, Any], folder: Path, data: Path, seed: int, quick: bool, size: dict) -> dict:
    """The pipeline holding every stage-1 and stage-2 variant for one seed."""
    s1_base, s2_base = base["stage1"][0], base["stage2"][0]
    names = list(QUICK_STAGE1 if quick else STAGE1)
    run_name = folder.name
    stage1 = [changed(s1_base, n, STAGE1[n][1], size["stage1"]) for n in names]
    stage2 = []
    for name, (_, source, change) in stage2_variants(names, quick).items():
        labels = {"official": "official", "agreement": "pseudo"}.get(source, f"{run_name}-{source}")
        stage2.append({**changed(s2_base, name, change, size["stage2"]), "labels": labels, "ensemble": False})
    pipeline = {
        "data_root": str(data),
        # the official labels: the base pipeline's labeller as it is (the stage-1 variants start from it)
        "prepare": preparation(base, data, size["data"], labeller_args=size["labeller"]),
        "run_dir": str(folder),
        "seed": seed,
        "stage1": stage1,
        "stage2": stage2,
        "tracking": {"group": f"ablation-{run_name}"},
    }
    if not quick:
        pipeline |= {"selection": "agreement", "selection_models": VOTERS}
    return pipeline


def noise_pipeline(base: dict[str, Any], folder: Path, data: Path, seed: int, noise: float, size: dict) -> dict:
    """Stage 2 alone on official labels of a given noise level: CE against SCE + Lovasz."""
    s2_base = base["stage2"][0]
    return {
        "data_root": str(data),
        "prepare": preparation(base, data, {**size["data"], "label_noise": noise}, labeller_args=None),
        "run_dir": str(folder),
        "seed": seed,
        "stage2": [
            {**changed(s2_base, "ce", CE, size["stage2"]), "labels": "official"},
            {**changed(s2_base, "sce_lovasz", SAME, size["stage2"]), "labels": "official"},
        ],
        "tracking": {"group": f"ablation-noise{noise}"},
    }


def run_pipeline(pipeline: dict, folder: Path, env: dict[str, str]) -> dict:
    """Run (or resume) a pipeline in ``folder``; its evaluation rows by name."""
    check_outputs("ablation", [Output(folder, "folder", "the run folder")])  # its YAML and log go in first
    config = folder / "pipeline.yaml"
    config.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    log = folder / "pipeline.log"
    with log.open("a") as sink:
        code = subprocess.run([*CLI, "pipeline", f"--config={config}"], stdout=sink, stderr=subprocess.STDOUT, env=env)
    if code.returncode != 0:
        raise SystemExit(f"pipeline {config} failed; see {log}")
    scores = json.loads((folder / "evaluation" / "scores.json").read_text())
    return {row["name"]: row["mIoU"] for row in scores["rows"]}


def run_tool(name: str, *args: str, env: dict[str, str]) -> None:
    """Run a ``cli.py`` tool quietly; its output only if it fails."""
    result = subprocess.run([*CLI, name, *args, "--progress=false"], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"cli.py {name} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")


def test_time_scores(folder: Path, data: Path, quick: bool, env: dict[str, str]) -> dict[str, float]:
    """Single view vs TTA vs ensemble of two SAR models, all through ``submit`` with the same class weights."""
    sar = data / "OpenEarthMap-SAR" / "test"
    weights = json.dumps([0.0] + [1.0] * 8)
    method = best_checkpoint(folder / "stage2" / f"sar_on_{METHOD_SET}")
    if method is None:
        raise SystemExit(f"no best checkpoint under {folder / 'stage2'}")
    other = "sce" if quick else "larger_encoder"
    variants = {
        "single_view": [f"--ckpt_path={method}"],
        "tta": [f"--ckpt_path={method}", "--inference.flips=[none,h,v]", "--inference.scales=[0.75,1.0,1.25]"],
        "ensemble_of_two": [
            f"--soft_dirs={json.dumps([str(folder / 'maps' / f'sar_on_{METHOD_SET}'), str(folder / 'maps' / other)])}"
        ],
    }
    scores = {}
    for name, args in variants.items():
        out, scores_file = folder / "test_time" / name, folder / "test_time" / f"{name}.scores.json"
        if not scores_file.is_file():  # beside the submission: the folder it scores stays a submission only
            weighted = f"--ensemble.class_weights={weights}"
            submit = [f"--sar_dir={sar / 'sar_images'}", f"--output={out}", weighted, *args]
            run_tool("submit", *submit, env=env)
            run_tool(
                "evaluate", f"--predictions={out}", f"--labels={sar / 'labels'}", f"--output={scores_file}", env=env
            )
        scores[name] = json.loads(scores_file.read_text())["mIoU"]
    return scores


def collect(rows: dict[str, list[float]], name: str, value: float | None) -> None:
    rows.setdefault(name, []).append(float("nan") if value is None else value)


def results_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| group | variant | what it shows | pseudo-label mIoU (train truth) | SAR map mIoU (test) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cells = [f"{m:.3f} ± {s:.3f}" if m is not None else "-" for m, s in (r["pseudo_labels"], r["sar_map"])]
        lines.append(f"| {r['group']} | {r['variant']} | {r['what']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def pair(values: list[float] | None) -> tuple[float | None, float | None]:
    return mean_and_std(values) if values else (None, None)


def result(group: str, variant: str, what: str, pseudo: list[float] | None, sar: list[float] | None) -> dict:
    """One table row: mean and spread of the pseudo-label and SAR map scores."""
    return {"group": group, "variant": variant, "what": what, "pseudo_labels": pair(pseudo), "sar_map": pair(sar)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--base", default="experiments/demo.yaml", help="the base pipeline")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--noise", type=float, nargs="*", default=[0.1, 0.3, 0.6], help="label-noise levels")
    parser.add_argument("--steps", type=int, nargs=2, default=[150, 150], help="stage-1 and stage-2 steps")
    parser.add_argument("--crop", type=int, default=96, help="training crop size of both stages")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="pipelines run at the same time")
    parser.add_argument("--quick", action="store_true", help="tiny data, few steps and variants (CI)")
    args = parser.parse_args()
    started = time.perf_counter()
    os.environ.setdefault("WANDB_MODE", "offline")  # this process logs the table too
    env = child_environment(args.jobs)
    base = yaml.safe_load((REPO / args.base).read_text())
    out = Path(args.out).resolve()
    size = study_size(args, base)
    noise_levels = [size["data"]["label_noise"]] if args.quick else args.noise
    stage1_names = list(QUICK_STAGE1 if args.quick else STAGE1)

    failed = threading.Event()
    prepared = official_labels_marker(out / "data")

    def main_job(seed: int) -> dict[str, Any]:
        folder = out / f"seed{seed}"
        labelled = "official_labeller" in base.get("prepare", {}).get("init_args", {})
        if seed != args.seeds[0] and labelled:  # the first seed's run prepares the data
            while not prepared.is_file():
                if failed.is_set():
                    raise SystemExit(f"seed {seed} not run: preparing {out / 'data'} failed")
                time.sleep(2)
        try:
            rows = run_pipeline(study_pipeline(base, folder, out / "data", seed, args.quick, size), folder, env)
        except BaseException:
            failed.set()
            raise
        return {"rows": rows, "test_time": test_time_scores(folder, out / "data", args.quick, env)}

    def noise_job(seed: int, noise: float) -> dict[str, float]:
        folder = out / f"noise{noise}" / f"seed{seed}"
        return run_pipeline(noise_pipeline(base, folder, out / f"data_noise{noise}", seed, noise, size), folder, env)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # The first seed's main pipeline prepares the shared data while its noise pipelines run; the
        # other (long) main pipelines start next, the remaining (short) noise pipelines fill in last.
        first, *others = args.seeds
        jobs = {("main", first): pool.submit(main_job, first)}
        jobs |= {("noise", first, n): pool.submit(noise_job, first, n) for n in noise_levels}
        jobs |= {("main", seed): pool.submit(main_job, seed) for seed in others}
        jobs |= {("noise", seed, n): pool.submit(noise_job, seed, n) for seed in others for n in noise_levels}
        done = {key: job.result() for key, job in jobs.items()}

    pseudo: dict[str, list[float]] = {}
    sar: dict[str, list[float]] = {}
    for seed in args.seeds:
        rows, run = done[("main", seed)]["rows"], f"seed{seed}"
        for name in stage1_names:
            collect(pseudo, name, rows.get(f"train/labels_pl/{run}-{name}"))
        collect(pseudo, "official", rows.get("train/labels"))
        if not args.quick:
            collect(pseudo, "agreement", rows.get(f"train/labels_pl/{run}-selected"))
        for name in stage2_variants(stage1_names, args.quick):
            collect(sar, name, rows.get(f"maps/{name}"))
        for name, value in done[("main", seed)]["test_time"].items():
            collect(sar, name, value)
        for noise in noise_levels:
            noise_rows = done[("noise", seed, noise)]
            for loss in ("ce", "sce_lovasz"):
                collect(sar, f"noise{noise}_{loss}", noise_rows.get(f"maps/{loss}"))
            collect(pseudo, f"noise{noise}_official", noise_rows.get("train/labels"))

    results = [result("stage 1", n, STAGE1[n][0], pseudo.get(n), sar.get(f"sar_on_{n}")) for n in stage1_names]
    for name, (what, source, _) in stage2_variants(stage1_names, args.quick).items():
        if not name.startswith("sar_on_"):
            results.append(result("stage 2", name, what, pseudo.get(source), sar.get(name)))
    for name, what in TEST_TIME.items():
        results.append(result("test time", name, what, None, sar.get(name)))
    for noise in noise_levels:
        for loss in ("ce", "sce_lovasz"):
            what = f"official labels, label_noise {noise}"
            labels, maps = pseudo.get(f"noise{noise}_official"), sar.get(f"noise{noise}_{loss}")
            results.append(result("label noise", f"{loss} @ {noise}", what, labels, maps))
    wall = time.perf_counter() - started
    table = results_table(results)
    (out / "results.md").write_text(table + "\n")
    summary = {"seeds": args.seeds, "quick": args.quick, "jobs": args.jobs, "wall_s": wall, "results": results}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    bar_chart([(f"{r['group']}: {r['variant']}", *r["sar_map"]) for r in results], out / "results.png",
              title=f"SAR map mIoU on the clean test truth (mean ± std, seeds {args.seeds})")  # fmt: skip
    log_to_wandb(out, results)
    quick = " (quick)" if args.quick else ""
    print(f"ablation study, seeds {args.seeds}{quick}, {args.jobs} jobs: {wall / 60:.1f} min wall\n{out}\n{table}")
    if any(
        m is not None and not (math.isfinite(m) and 0 <= m <= 1)
        for r in results
        for m in (r["pseudo_labels"][0], r["sar_map"][0])
    ):
        raise SystemExit("a score is not a finite number in [0, 1]")


def study_size(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """The data settings and the per-fit arguments of both stages at the study's (or the quick) size."""
    steps1, steps2 = (4, 4) if args.quick else args.steps
    demo = {**asdict(SyntheticConfig()), **base.get("prepare", {}).get("init_args", {}).get("settings", {})}
    data = asdict(SyntheticConfig.tiny()) if args.quick else demo
    if args.quick:
        smaller = ["--data.init_args.crop_size=64", "--data.init_args.batch_size=2", "--data.init_args.num_workers=0",
                   "--model.init_args.inference={window: 64, stride: 32}"]  # fmt: skip
    else:
        smaller = [f"--data.init_args.crop_size={args.crop}"]
    return {
        "data": data,
        "labeller": [f"--trainer.max_steps={steps1}", f"--trainer.val_check_interval={steps1}", *smaller]
        if args.quick
        else [],
        "stage1": [f"--trainer.max_steps={steps1}", f"--trainer.val_check_interval={steps1}", *smaller],
        "stage2": [f"--trainer.max_steps={steps2}", f"--trainer.val_check_interval={steps2}", *smaller],
    }


def log_to_wandb(out: Path, results: list[dict[str, Any]]) -> None:
    if os.environ.get("WANDB_MODE") == "disabled":
        return
    import wandb

    run = wandb.init(project="sar-landcover", group="ablation", job_type="ablation", dir=str(out), name=out.name,
                     settings=wandb.Settings(silent=True))  # fmt: skip
    columns = ["group", "variant", "what", "pseudo_mean", "pseudo_std", "sar_mean", "sar_std"]
    data = [[r["group"], r["variant"], r["what"], *r["pseudo_labels"], *r["sar_map"]] for r in results]
    run.log(
        {
            "ablation/results": wandb.Table(columns=columns, data=data),
            "ablation/plot": wandb.Image(str(out / "results.png")),
        }
    )
    run.finish()


if __name__ == "__main__":
    main()
