"""What a pipeline YAML holds: the data, the models of each stage, how stages are launched and tracked.

Every stage model points at ordinary LightningCLI config files (the ones ``python cli.py fit
--config ...`` accepts on their own) plus a few extra command-line arguments; the runner adds only
what ties the stages together (data root, run paths, label set, seed, logger, launcher), as a
settings file each stage gets as its last ``--config``. The spec knows a data root only; a
``prepare`` step (e.g. the demo's) may make it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from datamodules.layout import UnsafeNameError, check_name
from datamodules.nodata import NoDataRule
from lightning_modules.config_bases import resolve_config
from sar_pipeline.preparation import DataPreparation

Selection = Literal["none", "agreement", "soft_ensemble"]
Launcher = Literal["local", "slurm"]
CheckpointChoice = Literal["last", "best"]


@dataclass
class Stage1Model:
    """One stage-1 optical model: fitted, then used to write a pseudo-label set.

    Attributes:
        name: short name; its pseudo-label set is ``<run name>-<name>``.
        configs: LightningCLI config files, applied in order (each after the fragments it names under
            ``base:``), e.g. an experiment and a variant fragment of ``experiments/variants/``.
        args: extra LightningCLI arguments, e.g. ``["--trainer.max_steps=600"]``.
        init_from: an earlier stage-1 model, or a model of the data preparation (the demo's official
            labeller), whose whole fitted network initialises this one (``network.init_weights``);
            None: the config's initialisation.
    """

    name: str
    configs: list[str]
    args: list[str] = field(default_factory=list)
    init_from: str | None = None


@dataclass
class Stage2Model:
    """One stage-2 SAR model.

    Attributes:
        name: short name.
        configs: LightningCLI config files, applied in order (each after the fragments it names under
            ``base:``), e.g. ``[experiments/demo_sar.yaml, experiments/variants/ce_baseline.yaml]``.
        args: extra LightningCLI arguments, e.g. ``["--model.init_args.loss.ce_weight=1"]``.
        labels: ``pseudo`` (the pipeline's pseudo-label set: the selection, or the first stage-1
            model's set), ``official`` (``train/labels``) or the name of an existing set.
        ensemble: part of the submission ensemble (a baseline usually is not).
        init_from: name of a stage-1 model whose encoder initialises this model (None: the config's
            ``encoder_weights``). Passed as a model argument, never as ``ckpt_path``.
    """

    name: str
    configs: list[str]
    args: list[str] = field(default_factory=list)
    labels: str = "pseudo"
    ensemble: bool = True
    init_from: str | None = None


@dataclass
class StageOverride:
    """Extra LightningCLI config files and arguments for the fit and predict stages of some models.

    They come after each model's own configs and arguments (so they win over them) and before the
    runner's settings file, e.g. the size overrides that run a GPU recipe on a CPU
    (``experiments/dfc2025/cpu_smoke.yaml``).

    Attributes:
        models: whose stages: ``stage1`` or ``stage2`` (every model of that stage), or one model as
            ``stage1/<name>`` or ``stage2/<name>``.
        configs: LightningCLI config files (paths relative to the working folder, else to the repository).
        args: LightningCLI arguments, applied after ``configs``.
    """

    models: list[str]
    configs: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)

    def applies_to(self, stage: str, name: str) -> bool:
        """Whether this override applies to model ``name`` of ``stage`` (``stage1`` or ``stage2``)."""
        return stage in self.models or f"{stage}/{name}" in self.models


@dataclass
class SubmissionSettings:
    """The test-set ensemble and the contest submission (docs/method.md section 5); None = ``submit``'s default.

    Attributes:
        class_weights: per-class weights of the ensemble (None: ``submit``'s default, class 0 weight 0
            when several models vote, so only classes 1..8 win, as the reference does).
        nodata: the no-data rule of the submission (the reference's 99.85 % rule by default).
    """

    class_weights: list[float] | None = None
    nodata: NoDataRule = field(default_factory=NoDataRule)


@dataclass
class LaunchSettings:
    """How fit and predict stages are started.

    Attributes:
        launcher: ``local`` (one process; Lightning's own DDP across this machine's devices) or
            ``slurm`` (every stage through ``srun`` inside the current allocation).
        accelerator: ``trainer.accelerator`` of fit/predict stages (None: as in their configs).
        devices: ``trainer.devices`` per node (None: as in the configs; under SLURM the tasks per node).
        num_nodes: ``trainer.num_nodes`` (None: as in the configs; under SLURM the allocation's nodes).
        strategy: ``trainer.strategy`` (None: as in the configs).
        python: interpreter that runs ``cli.py`` (None: the one running the pipeline).
        requeue_grace: under SLURM, seconds a stage has after the job's warning signal (SIGUSR1) to
            save its checkpoint and exit before the runner requeues the job anyway; keep it below
            the sbatch ``--signal`` lead time (90 s in ``experiments/slurm/pipeline.sbatch``).
        parallel: stage-2 models fitted and mapped at the same time (local launcher only), each with
            ``cores / parallel`` threads; 1 runs one stage at a time. On a small CPU machine two
            fits side by side on one core each finish sooner than one after the other on both.
    """

    launcher: Launcher = "local"
    accelerator: str | None = None
    devices: int | None = None
    num_nodes: int | None = None
    strategy: str | None = None
    python: str | None = None
    requeue_grace: float = 60.0
    parallel: int = 1


@dataclass
class TrackingSettings:
    """Weights & Biases: one group per pipeline run, one run per stage.

    Attributes:
        project: W&B project.
        group: W&B group (None: the run name).
        entity: W&B entity (None: the user's default).
    """

    project: str = "sar-landcover"
    group: str | None = None
    entity: str | None = None


@dataclass
class PipelineSpec:
    """The whole method as one YAML file (see ``experiments/demo.yaml``).

    Attributes:
        data_root: folder holding ``OpenEarthMap/`` and ``OpenEarthMap-SAR/``.
        prepare: stages that make ``data_root`` before the method runs (``class_path`` of a
            :class:`~sar_pipeline.preparation.DataPreparation`, e.g. the demo's
            ``sar_demo.preparation.DemoPreparation``); they run only when ``data_root`` is the one it
            makes. None: ``data_root`` must exist.
        run_dir: the run's folder; every stage writes under it at a fixed path.
        seed: ``seed_everything`` of every fit and predict stage.
        stage1: optical models fitted on OEM and adapted to OEM-SAR optical.
        selection: how the stage-1 pseudo-label sets are combined (``none``: the first model's set).
        selection_models: the stage-1 models whose sets are combined (None: all of them).
        stage2: SAR models; the ``ensemble`` ones make the submission.
        feed_checkpoint: the checkpoint of a fit that the next stage uses (pseudo-labels, maps,
            ``init_from``): ``last`` (the end of the fit, as the reference does with the real data,
            which has no labelled target validation) or ``best`` (best ``val/mIoU``).
        overrides: extra configs and arguments of some models' stages, after their own (e.g. CPU sizes).
        submission: ensemble weights and no-data masking of the submission.
        launch: local or SLURM launching and the device layout.
        tracking: W&B project and group.
    """

    data_root: str
    prepare: DataPreparation | None = None
    run_dir: str = "runs/pipeline"
    seed: int = 0
    stage1: list[Stage1Model] = field(default_factory=list)
    selection: Selection = "none"
    selection_models: list[str] | None = None
    stage2: list[Stage2Model] = field(default_factory=list)
    feed_checkpoint: CheckpointChoice = "last"
    overrides: list[StageOverride] = field(default_factory=list)
    submission: SubmissionSettings = field(default_factory=SubmissionSettings)
    launch: LaunchSettings = field(default_factory=LaunchSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)


_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def model_problems(stage: str, models: list[Stage1Model] | list[Stage2Model]) -> list[str]:
    """Names used twice or unusable as folder names, missing config files; one line each."""
    names = [m.name for m in models]
    problems = [f"{stage}: model name {n!r} used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for name in names:  # a model name becomes a folder name, a set name and part of W&B run ids
        try:
            check_name(name, "model name")
        except UnsafeNameError as error:
            problems.append(f"{stage}: {error}")
            continue
        if not _NAME.match(name):
            problems.append(f"{stage}: model name {name!r} may hold only letters, digits, '_', '.', '-'")
    for model in models:
        if not model.configs:
            problems.append(f"{stage}/{model.name}: no config file")
        missing = [c for c in model.configs if not resolve_config(c).is_file()]
        problems += [f"{stage}/{model.name}: config file {c} does not exist" for c in missing]
    return problems


def check_spec(spec: PipelineSpec) -> None:
    """Reject a pipeline that cannot run, before any stage starts.

    Raises:
        ValueError: every problem found, one per line.
    """
    problems = model_problems("stage1", spec.stage1) + model_problems("stage2", spec.stage2)
    if spec.prepare is not None:
        problems += [f"prepare: {p}" for p in spec.prepare.problems()]
    stage1_names = {m.name for m in spec.stage1}
    prepared = spec.prepare.models() if spec.prepare is not None else []
    for index, model in enumerate(spec.stage1):
        earlier = [m.name for m in spec.stage1[:index]] + prepared
        if model.init_from is not None and model.init_from not in earlier:
            problems.append(
                f"stage1/{model.name}: init_from {model.init_from!r} is neither an earlier stage-1 model nor a model "
                f"of the data preparation ({earlier or 'none'})"
            )
    voters = spec.selection_models if spec.selection_models is not None else [m.name for m in spec.stage1]
    problems += [f"selection_models: {n!r} is not a stage-1 model" for n in voters if n not in stage1_names]
    if spec.selection == "agreement" and len(voters) != 2:
        problems.append(f"selection 'agreement' needs exactly 2 stage-1 models, got {len(voters)}")
    if spec.selection == "soft_ensemble" and not voters:
        problems.append("selection 'soft_ensemble' needs stage-1 models")
    models = {f"stage{n}/{m.name}" for n, stage in ((1, spec.stage1), (2, spec.stage2)) for m in stage}
    for number, override in enumerate(spec.overrides):
        unknown = [m for m in override.models if m not in {"stage1", "stage2", *models}]
        problems += [
            f"overrides[{number}]: {m!r} is neither stage1, stage2 nor a model (e.g. stage2/<name>)" for m in unknown
        ]
        missing = [c for c in override.configs if not resolve_config(c).is_file()]
        problems += [f"overrides[{number}]: config file {c} does not exist" for c in missing]
    for model in spec.stage2:
        if model.labels == "pseudo" and not spec.stage1:
            problems.append(f"stage2/{model.name}: labels 'pseudo' need at least one stage-1 model")
        if model.init_from is not None and model.init_from not in stage1_names:
            problems.append(f"stage2/{model.name}: init_from {model.init_from!r} is not a stage-1 model")
    if spec.launch.parallel < 1:
        problems.append(f"launch.parallel must be >= 1, got {spec.launch.parallel}")
    if spec.launch.parallel > 1 and spec.launch.launcher != "local":
        problems.append("launch.parallel > 1 runs stages side by side on this machine: it needs launcher 'local'")
    if not spec.stage1 and not spec.stage2:
        problems.append("the pipeline has no stage-1 and no stage-2 model")
    if problems:
        raise ValueError("invalid pipeline:\n  " + "\n  ".join(problems))
