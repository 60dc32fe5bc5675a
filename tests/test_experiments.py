"""Every experiment file and every stage config of every pipeline file parses (``--print_config``, in-process).

Experiment files are LightningCLI configs that name a model (they may build on ``experiments/base/``
fragments); fragments (``experiments/base/``, ``experiments/variants/``) are parsed composed onto an
experiment of their stage; pipeline files (they have ``stage1``/``stage2``) are turned into their
stages, whose commands (configs, the model's arguments, the runner's settings file) are parsed as
they would run, tools included.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from jsonargparse import auto_cli
from torch import nn

from lightning_modules.lightning_cli import run_lightning_cli
from lightning_modules.losses import LossConfig, build_loss
from lightning_modules.networks import NetworkConfig, build_model
from lightning_modules.optim import OptimConfig, parameter_groups, schedule_factor
from sar_landcover.commands import tool
from sar_pipeline.runner import build_parser
from sar_pipeline.spec import PipelineSpec
from sar_pipeline.stages import StageBuilder
from tests.helpers.cli import REPO

EXPERIMENTS = REPO / "experiments"
YAML_FILES = sorted(EXPERIMENTS.rglob("*.yaml"))
FRAGMENTS = [p for p in YAML_FILES if p.parent.name in ("base", "variants")]
STAGED = [p for p in YAML_FILES if {"stage1", "stage2", "overrides"} & set(yaml.safe_load(p.read_text()) or {})]
PIPELINES = [p for p in STAGED if "data_root" in yaml.safe_load(p.read_text())]
PIPELINE_FRAGMENTS = [p for p in STAGED if p not in PIPELINES]
"""Files given after a whole pipeline (``--config PIPELINE --config FRAGMENT``): stage lists such as
``demo_arms.yaml`` (after ``demo.yaml``) or size overrides such as ``dfc2025/cpu_smoke.yaml``."""
LIGHTNING_CONFIGS = [p for p in YAML_FILES if p not in FRAGMENTS and p not in STAGED]
FRAGMENT_STAGE = {"source_only.yaml": "demo_stage1.yaml", "no_raa.yaml": "demo_stage1.yaml"}
"""The experiment a variant fragment applies to (default: the stage-2 demo)."""


def relative(path: Path) -> str:
    return str(path.relative_to(EXPERIMENTS))


def print_config(args: list[str]) -> dict[str, Any]:
    """``cli.py <args> --print_config`` in this process: the resolved config (a failed parse fails the test)."""
    return copy.deepcopy(_printed_config(tuple(args)))


@functools.cache
def _printed_config(args: tuple[str, ...]) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        run_lightning_cli([*args, "--print_config"])
    assert done.value.code in (0, None), out.getvalue()[-2000:]
    return yaml.safe_load(out.getvalue())


def test_the_experiment_folder_is_sorted_into_the_three_kinds() -> None:
    assert {p.name for p in PIPELINES} == {"demo.yaml", "pipeline.yaml"}
    assert {p.name for p in PIPELINE_FRAGMENTS} == {"demo_arms.yaml", "cpu_smoke.yaml"}
    assert {relative(p) for p in FRAGMENTS} >= {
        "base/trainer_cpu.yaml",
        "base/trainer_ddp.yaml",
        "base/wandb.yaml",
        "variants/source_only.yaml",
        "variants/ce_baseline.yaml",
        "variants/no_raa.yaml",
    }
    assert all("class_path" in str(yaml.safe_load(p.read_text()).get("model")) for p in LIGHTNING_CONFIGS)


@pytest.mark.parametrize("config", LIGHTNING_CONFIGS, ids=relative)
def test_every_experiment_file_parses_with_its_bases(config: Path) -> None:
    resolved = print_config(["fit", f"--config={config}"])
    assert resolved["model"]["class_path"].startswith("lightning_modules.")
    assert resolved["trainer"]["logger"]["class_path"] == "lightning.pytorch.loggers.WandbLogger"
    assert resolved["trainer"]["max_steps"] > 0 and resolved["trainer"]["check_val_every_n_epoch"] is None
    assert "base" in resolved  # what it was composed from is shown


def leaves(config: dict, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every non-mapping value of a config by its key path (``base`` lists excluded)."""
    found: dict[tuple[str, ...], Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            found |= leaves(value, (*prefix, key))
        elif key != "base":
            found[(*prefix, key)] = value
    return found


def at(config: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        config = config[key]
    return config


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=relative)
def test_every_fragment_parses_composed_and_applies_what_it_states(fragment: Path) -> None:
    stated = leaves(yaml.safe_load(fragment.read_text()))
    if fragment.parent.name == "variants":  # given after an experiment of its stage
        experiment = EXPERIMENTS / FRAGMENT_STAGE.get(fragment.name, "demo_sar.yaml")
        composed = print_config(["fit", f"--config={experiment}", f"--config={fragment}"])
        assert composed != print_config(["fit", f"--config={experiment}"])
        assert {path: at(composed, path) for path in stated} == stated
        return
    users = [
        p for p in LIGHTNING_CONFIGS if f"experiments/{relative(fragment)}" in yaml.safe_load(p.read_text())["base"]
    ]
    assert users, f"no experiment builds on {fragment}"
    for experiment in users:  # named as a base: applied before the experiment, which may override it
        own = leaves(yaml.safe_load(experiment.read_text()))
        composed = print_config(["fit", f"--config={experiment}"])
        assert {p: at(composed, p) for p in stated if p not in own} == {p: v for p, v in stated.items() if p not in own}


def pipeline_stages(pipeline: Path | list[Path], tmp_path: Path, *extra: str) -> tuple[PipelineSpec, list]:
    """A pipeline file's stages (or those of several applied in order) on an empty data root (its own
    preparation's, if it has one)."""
    files = pipeline if isinstance(pipeline, list) else [pipeline]
    data = tmp_path / "data"
    data.mkdir()
    args = [*(f"--config={p}" for p in files), f"--data_root={data}", f"--run_dir={tmp_path / 'run'}"]
    args += ["--launch.launcher=local", *extra]
    if "prepare" in yaml.safe_load(files[0].read_text()):
        args.append(f"--prepare.init_args.root={data}")
    parser = build_parser()
    init = parser.instantiate(parser.parse_args(args))
    spec = PipelineSpec(**{k: init[k] for k in PipelineSpec.__dataclass_fields__})
    return spec, StageBuilder(spec).build()


def _composed(fragment: Path) -> list[Path]:
    """The pipeline a fragment applies to: ``pipeline.yaml`` of its folder, else ``<stem prefix>.yaml``."""
    own = fragment.parent / "pipeline.yaml"
    return [own if own.is_file() else EXPERIMENTS / f"{fragment.stem.split('_')[0]}.yaml", fragment]


@pytest.mark.parametrize(
    "pipeline",
    [*PIPELINES, *(_composed(p) for p in PIPELINE_FRAGMENTS)],
    ids=lambda p: " + ".join(relative(f) for f in p) if isinstance(p, list) else relative(p),
)
def test_every_stage_config_of_every_pipeline_parses_as_it_would_run(
    pipeline: Path | list[Path], tmp_path: Path
) -> None:
    # Every optional submission setting too, so that the submit stage's settings meet submit's options.
    submission = ["--submission.class_weights=[0, 1, 1, 1, 1, 1, 1, 1, 1]", "--submission.nodata.min_area=5000"]
    spec, stages = pipeline_stages(pipeline, tmp_path, *submission)
    for stage in stages:
        settings = stage.write_settings()
        if stage.distributed:
            resolved = print_config([stage.subcommand, *stage.arguments()])
            # The runner's settings are the last --config: they win over the model's configs and arguments.
            assert resolved["data"]["init_args"]["root"] == str(tmp_path / "data"), stage.id
            assert resolved["trainer"]["default_root_dir"] == str(stage.folder), stage.id
            assert resolved["trainer"]["logger"]["init_args"]["id"].endswith(stage.id.replace("/", "-")), stage.id
            assert resolved["seed_everything"] == spec.seed
            callbacks = [c["class_path"].rsplit(".", 1)[-1] for c in resolved["trainer"]["callbacks"]]
            # fits also stop cleanly on SLURM's time-limit warning
            expected = ["TileWriter", "ArtifactLineage"] + (["CheckpointOnSignal"] if stage.subcommand == "fit" else [])
            assert callbacks == expected, stage.id
            assert (resolved.get("ckpt_path") is not None) == (stage.subcommand == "predict"), stage.id
        else:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
                auto_cli(tool(stage.subcommand), args=[*stage.arguments(), "--print_config"], as_positional=False)
            assert done.value.code in (0, None), stage.id
            printed = yaml.safe_load(out.getvalue())
            assert {k: printed[k] for k in settings if not isinstance(settings[k], dict)} == {
                k: v for k, v in settings.items() if not isinstance(v, dict)
            }, stage.id


def test_the_model_arguments_of_a_stage_cannot_move_it_off_its_data_root(tmp_path: Path) -> None:
    _, stages = pipeline_stages(EXPERIMENTS / "demo.yaml", tmp_path)
    stage = next(s for s in stages if s.id == "stage2/method")
    stage.args = [*stage.args, "--data.init_args.root=/elsewhere", "--seed_everything=99"]
    stage.write_settings()
    resolved = print_config([stage.subcommand, *stage.arguments()])
    assert resolved["data"]["init_args"]["root"] == str(tmp_path / "data") and resolved["seed_everything"] == 0


@pytest.mark.parametrize("config", [p for p in LIGHTNING_CONFIGS if p.name.startswith("demo")], ids=relative)
def test_demo_networks_keep_batchnorm_statistics_current(config: Path) -> None:
    """Guard against eval-mode collapse: BatchNorm momentum 0.01 (smp EfficientNets) lags in short CPU runs."""
    network = yaml.safe_load(config.read_text()).get("model", {}).get("init_args", {}).get("network", {})
    settings = {k: v for k, v in vars(NetworkConfig(**network)).items() if k not in ("output_stride", "init_weights")}
    model = build_model(**settings)
    momenta = [m.momentum for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(m is None or m >= 0.1 for m in momenta)


@pytest.mark.parametrize("stage", ["stage1_optical.yaml", "stage2_sar.yaml"])
def test_the_multi_gpu_recipes_normalise_batches_over_every_gpu(stage: str) -> None:
    """With 2 crops per GPU, per-GPU BatchNorm statistics are noisy: both stages of the recipe sync them."""
    trainer = print_config(["fit", f"--config={EXPERIMENTS / 'dfc2025' / stage}"])["trainer"]
    assert trainer["strategy"] == "ddp" and trainer["sync_batchnorm"] is True


OFFICIAL_BASELINE = {
    ("model", "init_args", "network", "arch"): "Unet",
    ("model", "init_args", "network", "encoder"): "efficientnet-b4",
    ("model", "init_args", "network", "decoder_attention_type"): "scse",
    ("model", "init_args", "network", "in_channels"): 1,
    ("model", "init_args", "network", "num_classes"): 9,
    ("model", "init_args", "input", "normalisation"): "divide_255",
    ("model", "init_args", "optim", "optimizer"): "adam",
    ("model", "init_args", "optim", "lr"): 0.0001,
    ("model", "init_args", "optim", "schedule"): "constant",
    ("model", "init_args", "loss", "ce_weight"): 1.0,
    ("model", "init_args", "loss", "sce_weight"): 0.0,
    ("model", "init_args", "loss", "lovasz_weight"): 0.0,
    ("model", "init_args", "inference", "whole_tile"): True,
    ("model", "init_args", "inference", "scales"): [1.0],
    ("model", "init_args", "inference", "flips"): ["none", "h", "v", "hv"],
    ("data", "init_args", "crop_size"): 512,
    ("data", "init_args", "scale_range"): [1.0, 1.0],
    ("data", "init_args", "cat_max_ratio"): 1.0,
    ("data", "init_args", "flip_rotate"): False,
    ("trainer", "precision"): "32-true",
}
"""The official baseline's recipe as resolved config values (its repository's train.py and test.py)."""


def test_the_official_baseline_arm_of_the_dfc2025_pipeline_is_the_contest_recipe(tmp_path: Path) -> None:
    _, stages = pipeline_stages(EXPERIMENTS / "dfc2025/pipeline.yaml", tmp_path)
    stage = next(s for s in stages if s.id == "stage2/official_baseline")
    stage.write_settings()
    resolved = print_config([stage.subcommand, *stage.arguments()])
    assert {path: at(resolved, path) for path in OFFICIAL_BASELINE} == OFFICIAL_BASELINE
    assert at(resolved, ("model", "init_args", "network", "encoder_weights")) == "imagenet"  # the recipe's start
    init = resolved["model"]["init_args"]
    assert resolved["data"]["init_args"]["batch_size"] * resolved["trainer"]["devices"] == 8
    assert resolved["data"]["init_args"]["label_set"] == "official"
    # What those values do: no weight decay in any parameter group, the same rate at every step,
    # class 0 in the loss (only padding, 255, carries no supervision).
    optim = OptimConfig(**init["optim"])
    network = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    assert {g["weight_decay"] for g in parameter_groups(network, optim)} == {0.0}
    assert {schedule_factor(step, optim, 80000) for step in (0, 1, 1500, 40000, 79999)} == {1.0}
    loss = build_loss(LossConfig(**init["loss"]))
    logits = torch.zeros(1, 9, 2, 2, requires_grad=True)
    total, _ = loss(logits, torch.tensor([[[0, 0], [255, 255]]]))
    total.backward()
    assert logits.grad[0, :, 0].abs().sum() > 0 and logits.grad[0, :, 1].abs().sum() == 0


def test_the_demo_arms_include_the_official_baseline_at_the_demo_s_budget(tmp_path: Path) -> None:
    _, stages = pipeline_stages([EXPERIMENTS / "demo.yaml", EXPERIMENTS / "demo_arms.yaml"], tmp_path)
    stage = next(s for s in stages if s.id == "stage2/official_baseline")
    stage.write_settings()
    resolved = print_config([stage.subcommand, *stage.arguments()])
    # The demo's budget (its docstring): 256 px tiles, 200 steps from scratch on a CPU, a smaller EfficientNet.
    sizes = {
        ("data", "init_args", "crop_size"),
        ("model", "init_args", "optim", "lr"),
        ("model", "init_args", "network", "encoder"),
    }
    assert {p: at(resolved, p) for p in OFFICIAL_BASELINE if p not in sizes} == {
        p: v for p, v in OFFICIAL_BASELINE.items() if p not in sizes
    }
    assert resolved["model"]["init_args"]["network"]["encoder"].startswith("efficientnet-")
    # smp's EfficientNet BatchNorm momentum (0.01) lags in a short run from scratch: the demo raises it.
    assert resolved["model"]["init_args"]["network"]["bn_momentum"] >= 0.1
