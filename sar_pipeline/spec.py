"""What a pipeline YAML holds: the data, the models of each stage, how stages are launched and tracked.

Every stage model points at ordinary LightningCLI config files (the ones ``python cli.py fit
--config ...`` accepts on their own) plus a few extra command-line arguments; the runner adds only
what ties the stages together (data root, run paths, label set, seed, logger, launcher).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sar_synthetic.generator import SyntheticConfig

Selection = Literal["none", "agreement", "soft_ensemble"]
Launcher = Literal["local", "slurm"]


@dataclass
class Stage1Model:
    """One stage-1 optical model: fitted, then used to write a pseudo-label set.

    Attributes:
        name: short name; its pseudo-label set is ``<run name>-<name>``.
        configs: LightningCLI config files, applied in order.
        args: extra LightningCLI arguments, e.g. ``["--trainer.max_steps=600"]``.
    """

    name: str
    configs: list[str]
    args: list[str] = field(default_factory=list)


@dataclass
class Stage2Model:
    """One stage-2 SAR model.

    Attributes:
        name: short name.
        configs: LightningCLI config files, applied in order.
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
class SubmissionSettings:
    """The test-set ensemble and the contest submission (METHOD.md section 5); None = ``submit``'s default.

    Attributes:
        class_weights: per-class weights of the ensemble (``submit``'s default: class 0 weight 0 when
            several models vote, so only classes 1..8 win, as the reference does).
        nodata_min_area: smallest border-connected zero region (pixels) treated as no-data.
    """

    class_weights: list[float] | None = None
    nodata_min_area: int | None = None


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
    """

    launcher: Launcher = "local"
    accelerator: str | None = None
    devices: int | None = None
    num_nodes: int | None = None
    strategy: str | None = None
    python: str | None = None
    requeue_grace: float = 60.0


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
        demo_data: generate the synthetic dataset into ``data_root`` when it is missing.
        demo_settings: size, seed and difficulty of that synthetic dataset.
        demo_official_labeller: when the demo data is generated, make its official labels as the
            real ones were made: this (source-only) optical model is fitted on the generated OEM and
            its pseudo-labels of the OEM-SAR train optical replace ``train/labels`` (the generator's
            noise-model labels move to ``train/labels_noise_model``). None keeps the generator's.
        run_dir: the run's folder; every stage writes under it at a fixed path.
        seed: ``seed_everything`` of every fit and predict stage.
        stage1: optical models fitted on OEM and adapted to OEM-SAR optical.
        selection: how the stage-1 pseudo-label sets are combined (``none``: the first model's set).
        selection_models: the stage-1 models whose sets are combined (None: all of them).
        stage2: SAR models; the ``ensemble`` ones make the submission.
        submission: ensemble weights and no-data masking of the submission.
        launch: local or SLURM launching and the device layout.
        tracking: W&B project and group.
    """

    data_root: str = "data/demo"
    demo_data: bool = False
    demo_settings: SyntheticConfig = field(default_factory=SyntheticConfig)
    demo_official_labeller: Stage1Model | None = None
    run_dir: str = "runs/pipeline"
    seed: int = 0
    stage1: list[Stage1Model] = field(default_factory=list)
    selection: Selection = "none"
    selection_models: list[str] | None = None
    stage2: list[Stage2Model] = field(default_factory=list)
    submission: SubmissionSettings = field(default_factory=SubmissionSettings)
    launch: LaunchSettings = field(default_factory=LaunchSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)


_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
REPO = Path(__file__).resolve().parents[1]


def resolve_config(path: str) -> Path:
    """A stage config file: as given (relative to the working folder), else relative to the repository."""
    given = Path(path)
    if given.is_file() or given.is_absolute():
        return given
    return REPO / given if (REPO / given).is_file() else given


def check_spec(spec: PipelineSpec) -> None:
    """Reject a pipeline that cannot run, before any stage starts.

    Raises:
        ValueError: every problem found, one per line.
    """
    problems: list[str] = []
    labeller = [spec.demo_official_labeller] if spec.demo_official_labeller else []
    if labeller and not spec.demo_data:
        problems.append("demo_official_labeller needs demo_data: true (it relabels generated data only)")
    for stage, models in (("stage1", spec.stage1 + labeller), ("stage2", spec.stage2)):
        names = [m.name for m in models]
        problems += [f"{stage}: model name {n!r} used twice" for n in sorted({n for n in names if names.count(n) > 1})]
        bad = [n for n in names if not _NAME.match(n)]
        problems += [f"{stage}: model name {n!r} may hold only letters, digits, '_', '.', '-'" for n in bad]
        for model in models:
            if not model.configs:
                problems.append(f"{stage}/{model.name}: no config file")
            missing = [c for c in model.configs if not resolve_config(c).is_file()]
            problems += [f"{stage}/{model.name}: config file {c} does not exist" for c in missing]
    stage1_names = {m.name for m in spec.stage1}
    voters = spec.selection_models if spec.selection_models is not None else [m.name for m in spec.stage1]
    problems += [f"selection_models: {n!r} is not a stage-1 model" for n in voters if n not in stage1_names]
    if spec.selection == "agreement" and len(voters) != 2:
        problems.append(f"selection 'agreement' needs exactly 2 stage-1 models, got {len(voters)}")
    if spec.selection == "soft_ensemble" and not voters:
        problems.append("selection 'soft_ensemble' needs stage-1 models")
    for model in spec.stage2:
        if model.labels == "pseudo" and not spec.stage1:
            problems.append(f"stage2/{model.name}: labels 'pseudo' need at least one stage-1 model")
        if model.init_from is not None and model.init_from not in stage1_names:
            problems.append(f"stage2/{model.name}: init_from {model.init_from!r} is not a stage-1 model")
    if not spec.stage1 and not spec.stage2:
        problems.append("the pipeline has no stage-1 and no stage-2 model")
    if problems:
        raise ValueError("invalid pipeline:\n  " + "\n  ".join(problems))
