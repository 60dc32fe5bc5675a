"""The stages of a pipeline run: their commands, their tie-in settings, fixed output paths and completion.

Run folder layout (``<run>`` = ``spec.run_dir``)::

    <run>/<preparation stage>/   the data preparation's stages, if any (the demo's: data/, and its
                                 official labeller's stage1/<labeller>/, pseudo_labels/<labeller>/, official_labels/)
    <run>/stage1/<model>/        checkpoints/{best-*,last}.ckpt (later stages use ``feed_checkpoint``), config.yaml
    <run>/pseudo_labels/<model>/ config.yaml, wandb/   (the set itself: OEM-SAR train/labels_pl/<run name>-<model>/)
    <run>/selection/                                   (the set: train/labels_pl/<run name>-selected/)
    <run>/stage2/<model>/        checkpoints/{best-*,last}.ckpt, config.yaml, wandb/
    <run>/maps/<model>/          labels/ and soft/ GeoTIFFs of every test tile
    <run>/submission/            <tile>.png (0..8) and submission.zip (replaced as a whole by ``submit``,
                                 so the stage's own log and marker are in <run>/submission_stage/)
    <run>/evaluation/            scores.json, table.md

Every stage folder also holds ``runner_settings.yaml``: what the runner ties the stage to (data root,
run paths, label sets, seed, logger, checkpoint folders, device layout, the checkpoints of earlier
stages), written when the stage starts and passed as the command's last ``--config``, so it wins
over the model's own configs and arguments. A stage is complete when its folder holds ``stage.json``
(written after its process exited 0) and its outputs exist; a fit stage that is not complete resumes
from its newest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datamodules.layout import OEM_SAR_DIR, check_name, label_folder, pseudo_label_dirs
from datamodules.output_safety import Output
from lightning_modules.config_bases import resolve_config
from sar_pipeline.launch import trainer_layout
from sar_pipeline.spec import CheckpointChoice, PipelineSpec, Stage1Model, Stage2Model
from sar_tracking.artifacts import ArtifactRef

STAGE_KINDS = ("stage1", "pseudo_labels", "selection", "stage2", "maps", "submission", "evaluation")
"""The kinds of the method's stages, in order (a data preparation adds kinds of its own, e.g. ``data``)."""
MARKER = "stage.json"
SETTINGS = "runner_settings.yaml"
Settings = dict[str, Any]
"""A stage's tie-in settings: a config of its command (LightningCLI or tool), nested like its options."""


def settings_text(settings: Settings) -> str:
    """Settings as the YAML of a settings file."""
    return yaml.safe_dump(settings, sort_keys=False)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@dataclass
class Stage:
    """One step of the pipeline, run as its own process.

    Attributes:
        id: ``<kind>`` or ``<kind>/<model>``; also its folder under the run folder and its W&B name.
        kind: what the stage does (one of ``STAGE_KINDS``, or a data preparation's kind).
        subcommand: the ``cli.py`` subcommand.
        settings: builds the stage's tie-in settings when it starts (paths of earlier stages'
            checkpoints and the resume checkpoint are only known then).
        folder: the stage's folder (settings, config record, marker, logs).
        configs: the model's LightningCLI config files, applied first.
        args: the model's own extra arguments (from the pipeline YAML), applied after its configs.
        distributed: a Lightning fit/predict (launched on every device) rather than a one-process tool.
        outputs: paths that must exist for the stage to count as complete.
        writes: what the stage writes besides its folder, checked against the output rule before the
            pipeline starts.
        produces: the W&B artifact the stage's output becomes.
        uses: the W&B artifacts it reads.
        complete_check: overrides the marker test (e.g. generated data has a marker of its own).
        skip_reason: when the stage starts, why it does not apply to this data (None: it runs), e.g.
            no test labels to score against.
        tracked: a one-process stage gets a W&B run of its own after it finished.
    """

    id: str
    kind: str
    subcommand: str
    settings: Callable[[], Settings]
    folder: Path
    configs: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    distributed: bool = False
    outputs: list[Path] = field(default_factory=list)
    writes: list[Output] = field(default_factory=list)
    produces: ArtifactRef | None = None
    uses: list[ArtifactRef] = field(default_factory=list)
    complete_check: Callable[[], bool] | None = None
    skip_reason: Callable[[], str | None] | None = None
    tracked: bool = True

    @property
    def settings_file(self) -> Path:
        """Where the runner writes the stage's tie-in settings."""
        return self.folder / SETTINGS

    def arguments(self) -> list[str]:
        """The words after the subcommand: the model's configs and arguments, then the settings file (it wins)."""
        return [*(f"--config={c}" for c in self.configs), *self.args, f"--config={self.settings_file}"]

    def write_settings(self) -> Settings:
        """Write the tie-in settings as they are now into the stage folder (atomically); return them."""
        settings = self.settings()
        _write_atomically(self.settings_file, settings_text(settings))
        return settings

    def is_complete(self) -> bool:
        """True when the stage finished before and its outputs are still there."""
        if self.complete_check is not None:
            return self.complete_check()
        return self.has_finished()

    def has_finished(self) -> bool:
        """True when its process exited 0 before (the marker) and its outputs are still there."""
        return (self.folder / MARKER).is_file() and all(p.exists() for p in self.outputs)

    def mark_complete(self, command: list[str], settings: Settings) -> None:
        """Record that the stage finished, with the command and settings it ran with (written atomically)."""
        record = {"id": self.id, "command": command, "settings": settings, "outputs": [str(p) for p in self.outputs]}
        _write_atomically(self.folder / MARKER, json.dumps(record, indent=2))

    def clear_mark(self) -> None:
        """Forget that the stage finished (it is about to run again)."""
        (self.folder / MARKER).unlink(missing_ok=True)


def run_name(spec: PipelineSpec) -> str:
    """The run's name: the run folder's name (also the W&B group unless one is set).

    Raises:
        UnsafeNameError: a name that cannot be part of the pseudo-label set names (e.g. empty for ``/``).
    """
    return check_name(Path(spec.run_dir).resolve().name, "run name (the run folder's name)")


def run_key(spec: PipelineSpec) -> str:
    """Stable prefix of the run's W&B ids: the SLURM job id under SLURM, else a hash of the run folder.

    A requeued SLURM job keeps its job id, so its stages continue the same W&B runs.
    """
    job = os.environ.get("SLURM_JOB_ID")
    if spec.launch.launcher == "slurm" and job:
        return f"slurm{job}"
    return hashlib.sha1(str(Path(spec.run_dir).resolve()).encode()).hexdigest()[:8]


def wandb_id(spec: PipelineSpec, stage_id: str) -> str:
    """The W&B run id of a stage."""
    return f"{run_key(spec)}-{stage_id.replace('/', '-')}"


def best_checkpoint(folder: Path) -> Path | None:
    """The best checkpoint a fit stage wrote (``best-*.ckpt``), newest first if several."""
    found = sorted((folder / "checkpoints").glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def fed_checkpoint(folder: Path, choice: CheckpointChoice = "best") -> Path | None:
    """The checkpoint of a fit stage that later stages use: ``last.ckpt`` (``last``) or the best one."""
    if choice == "last":
        last = folder / "checkpoints" / "last.ckpt"
        return last if last.is_file() else None
    return best_checkpoint(folder)


def resume_checkpoint(folder: Path) -> Path | None:
    """Newest of ``last.ckpt`` and Lightning's SLURM ``hpc_ckpt_*.ckpt`` of an unfinished fit."""
    candidates = [folder / "checkpoints" / "last.ckpt", *folder.glob("hpc_ckpt_*.ckpt")]
    existing = [p for p in candidates if p.is_file()]
    return max(existing, key=lambda p: p.stat().st_mtime) if existing else None


def checkpoint_or_placeholder(folder: Path, stage_id: str, choice: CheckpointChoice = "best") -> str:
    """The ``choice`` checkpoint of a fit stage's folder, or a placeholder naming it (a dry run, before the fit)."""
    path = fed_checkpoint(folder, choice)
    return str(path) if path else f"<{choice} checkpoint of {stage_id}>"


def _class(class_path: str, **init_args: object) -> Settings:
    return {"class_path": class_path, "init_args": init_args}


def _lineage(produces: ArtifactRef, uses: list[ArtifactRef]) -> Settings:
    return _class("sar_tracking.lineage.ArtifactLineage", produces=asdict(produces), uses=[asdict(u) for u in uses])


class StageBuilder:
    """Turns a :class:`PipelineSpec` into its ordered list of stages."""

    def __init__(self, spec: PipelineSpec, dry_run: bool = False) -> None:
        self.spec = spec
        self.dry_run = dry_run  # outside a SLURM allocation, commands show the layout as placeholders
        self.run = Path(spec.run_dir).resolve()
        self.root = Path(spec.data_root).resolve()
        self.name = run_name(spec)

    # --- names and paths -------------------------------------------------------------------------
    def set_name(self, model: str) -> str:
        """Pseudo-label set written by a stage-1 model."""
        return f"{self.name}-{model}"

    def pseudo_set(self) -> str:
        """The set stage-2 ``pseudo`` models learn from."""
        if self.spec.selection != "none":
            return f"{self.name}-selected"
        return self.set_name(self.spec.stage1[0].name)

    def set_folder(self, name: str) -> Path:
        """Hard labels of a label set (``official`` = ``train/labels``)."""
        return label_folder(self.root, "train", name)

    def new_set(self, name: str, option: str, soft: bool = True) -> list[Output]:
        """The folders of a pseudo-label set a stage writes: hard labels, and soft maps unless ``soft`` is False."""
        hard, soft_maps = pseudo_label_dirs(self.root, name)
        return [Output(folder, "folder", option) for folder in (hard, soft_maps)[: 2 if soft else 1]]

    def set_ref(self, name: str) -> ArtifactRef:
        """The W&B artifact of a label set."""
        return ArtifactRef(f"labels-{name}", "pseudo-labels", str(self.set_folder(name)))

    def _model_ref(self, stage: str, model: str) -> ArtifactRef:
        folder = self.run / stage / model
        path = fed_checkpoint(folder, self.spec.feed_checkpoint) or folder
        return ArtifactRef(f"{stage}-{model}-{self.name}", "model", str(path))

    def checkpoint_of(self, folder: Path, stage_id: str) -> str:
        """The checkpoint of a fit that the next stage uses (``feed_checkpoint``), or a placeholder before the fit."""
        return checkpoint_or_placeholder(folder, stage_id, self.spec.feed_checkpoint)

    def labels_of(self, model: Stage2Model) -> str:
        """Label set a stage-2 model trains on."""
        return self.pseudo_set() if model.labels == "pseudo" else model.labels

    def stage1_checkpoint(self, name: str) -> str:
        """The fed checkpoint of a stage-1 model of this run, or of a model the data preparation fitted."""
        if any(m.name == name for m in self.spec.stage1):
            return self.checkpoint_of(self.run / "stage1" / name, f"stage1/{name}")
        assert self.spec.prepare is not None, f"{name} is not a stage-1 model (check_spec catches this)"
        return self.spec.prepare.checkpoint(name, self)

    def model_configs(self, model: Stage1Model | Stage2Model) -> list[str]:
        """A model's LightningCLI config files, as absolute paths."""
        return [str(resolve_config(c).resolve()) for c in model.configs]

    def model_args(self, stage: str, model: Stage1Model | Stage2Model) -> list[str]:
        """A model's own arguments, then those of the pipeline's overrides that apply to it (in their order)."""
        words = list(model.args)
        for override in self.spec.overrides:
            if override.applies_to(stage, model.name):
                words += [f"--config={resolve_config(c).resolve()}" for c in override.configs]
                words += override.args
        return words

    # --- shared settings blocks -------------------------------------------------------------------
    def lightning_settings(self, stage_id: str, folder: Path, data: Settings | None = None) -> Settings:
        """What every fit and predict stage is tied to: seed, folder, W&B run, data root, device layout."""
        logger = _class(
            "lightning.pytorch.loggers.WandbLogger",
            project=self.spec.tracking.project,
            name=stage_id,
            save_dir=str(folder),
            id=wandb_id(self.spec, stage_id),
        )
        return {
            "seed_everything": self.spec.seed,
            "trainer": {
                "default_root_dir": str(folder),
                "logger": logger,
                **trainer_layout(self.spec.launch, self.dry_run),
            },
            "data": {"init_args": {"root": str(self.root), **(data or {})}},
        }

    def fit_settings(
        self,
        stage_id: str,
        folder: Path,
        lineage: Settings,
        data: Settings | None = None,
        model: Settings | None = None,
    ) -> Settings:
        """A fit with fixed checkpoint folders, resuming from its newest checkpoint if interrupted."""
        settings = self.lightning_settings(stage_id, folder, data)
        if model:
            settings["model"] = {"init_args": model}
        # After the config's own callbacks: the lineage record, and SLURM's warning signal (passed on by the
        # runner) checkpointing after the current step.
        settings["trainer"]["callbacks+"] = [lineage, _class("lightning_modules.signal_checkpoint.CheckpointOnSignal")]
        settings["checkpoint"] = {"dirpath": str(folder / "checkpoints")}
        settings["last_checkpoint"] = {"dirpath": str(folder / "checkpoints")}
        resume = resume_checkpoint(folder)
        if resume:
            settings["ckpt_path"] = str(resume)
        return settings

    def predict_settings(
        self, stage_id: str, folder: Path, lineage: Settings, checkpoint: str, data: Settings | None = None
    ) -> Settings:
        """A predict from ``checkpoint`` whose only callbacks are the tile writer and the lineage record."""
        settings = self.lightning_settings(stage_id, folder, data)
        settings["trainer"]["callbacks"] = [_class("lightning_modules.prediction_writer.TileWriter"), lineage]
        settings["ckpt_path"] = checkpoint
        return settings

    # --- stages ------------------------------------------------------------------------------------
    def stage1_stages(self, model: Stage1Model) -> list[Stage]:
        """Fit a stage-1 model, then write its pseudo-label set."""
        fit_folder, predict_folder = self.run / "stage1" / model.name, self.run / "pseudo_labels" / model.name
        fit_id, predict_id = f"stage1/{model.name}", f"pseudo_labels/{model.name}"
        produced = ArtifactRef(f"stage1-{model.name}-{self.name}", "model")
        pseudo = self.set_name(model.name)
        configs, args = self.model_configs(model), self.model_args("stage1", model)

        def predict_settings() -> Settings:
            lineage = _lineage(self.set_ref(pseudo), [self._model_ref("stage1", model.name)])
            checkpoint = self.checkpoint_of(fit_folder, fit_id)
            return self.predict_settings(predict_id, predict_folder, lineage, checkpoint, {"pseudo_label_set": pseudo})

        def fit_settings() -> Settings:
            if model.init_from is None:
                return self.fit_settings(fit_id, fit_folder, _lineage(produced, []))
            network = {"network": {"init_weights": self.stage1_checkpoint(model.init_from)}}
            return self.fit_settings(fit_id, fit_folder, _lineage(produced, []), model=network)

        return [
            Stage(
                fit_id,
                "stage1",
                "fit",
                fit_settings,
                fit_folder,
                configs,
                args,
                distributed=True,
                outputs=[fit_folder / "checkpoints" / "last.ckpt"],
            ),
            Stage(
                predict_id,
                "pseudo_labels",
                "predict",
                predict_settings,
                predict_folder,
                configs,
                args,
                distributed=True,
                outputs=[self.set_folder(pseudo)],
                writes=self.new_set(pseudo, f"the pseudo-label set of {predict_id}"),
            ),
        ]

    def selection_stage(self) -> Stage:
        voters = self.spec.selection_models
        sets = [self.set_name(n) for n in (voters if voters is not None else [m.name for m in self.spec.stage1])]
        output = self.pseudo_set()
        settings = {"root": str(self.root), "sets": sets, "output": output, "mode": self.spec.selection}
        return Stage(
            "selection",
            "selection",
            "select-pseudo-labels",
            lambda: settings,
            self.run / "selection",
            outputs=[self.set_folder(output)],
            writes=self.new_set(output, "the selected pseudo-label set", soft=False),
            produces=self.set_ref(output),
            uses=[self.set_ref(s) for s in sets],
        )

    def stage2_stages(self, model: Stage2Model) -> list[Stage]:
        fit_folder, maps_folder = self.run / "stage2" / model.name, self.run / "maps" / model.name
        fit_id, maps_id = f"stage2/{model.name}", f"maps/{model.name}"
        labels = self.labels_of(model)
        configs, args = self.model_configs(model), self.model_args("stage2", model)

        def fit_settings() -> Settings:
            uses, network = [self.set_ref(labels)], None
            if model.init_from:
                network = {"network": {"encoder_weights": self.stage1_checkpoint(model.init_from)}}
                uses.append(self._model_ref("stage1", model.init_from))
            lineage = _lineage(ArtifactRef(f"stage2-{model.name}-{self.name}", "model"), uses)
            return self.fit_settings(fit_id, fit_folder, lineage, {"label_set": labels}, network)

        def maps_settings() -> Settings:
            lineage = _lineage(
                ArtifactRef(f"maps-{model.name}-{self.name}", "maps", str(maps_folder / "labels")),
                [self._model_ref("stage2", model.name)],
            )
            checkpoint = self.checkpoint_of(fit_folder, fit_id)
            return self.predict_settings(
                maps_id, maps_folder, lineage, checkpoint, {"prediction_dir": str(maps_folder)}
            )

        return [
            Stage(
                fit_id,
                "stage2",
                "fit",
                fit_settings,
                fit_folder,
                configs,
                args,
                distributed=True,
                outputs=[fit_folder / "checkpoints" / "last.ckpt"],
            ),
            Stage(
                maps_id,
                "maps",
                "predict",
                maps_settings,
                maps_folder,
                configs,
                args,
                distributed=True,
                outputs=[maps_folder / "labels", maps_folder / "soft"],
                writes=[Output(maps_folder / sub, "folder", f"the maps of {maps_id}") for sub in ("labels", "soft")],
            ),
        ]

    def submission_stage(self) -> Stage:
        members = [m.name for m in self.spec.stage2 if m.ensemble] or [self.spec.stage2[0].name]
        folder = self.run / "submission"
        submission = self.spec.submission
        settings: Settings = {
            "soft_dirs": [str(self.run / "maps" / m / "soft") for m in members],
            "sar_dir": str(self.root / OEM_SAR_DIR / "test" / "sar_images"),
            "output": str(folder),
            "nodata": asdict(submission.nodata),
        }
        if submission.class_weights is not None:
            settings["ensemble"] = {"class_weights": submission.class_weights}
        return Stage(
            "submission",
            "submission",
            "submit",
            lambda: settings,
            self.run / "submission_stage",
            outputs=[folder],  # written aside and renamed in when complete: it exists only whole
            writes=[Output(folder, "replaced_folder", "the submission folder")],
            produces=ArtifactRef(f"submission-{self.name}", "submission", str(folder)),
            uses=[ArtifactRef(f"maps-{m}-{self.name}", "maps", str(self.run / "maps" / m / "labels")) for m in members],
        )

    def evaluation_stage(self) -> Stage:
        folder = self.run / "evaluation"
        sets = sorted({self.labels_of(m) for m in self.spec.stage2} | {self.set_name(m.name) for m in self.spec.stage1})
        train, test_labels = self.root / OEM_SAR_DIR / "train", self.root / OEM_SAR_DIR / "test" / "labels"
        settings = {
            "run_dir": str(self.run),
            "data_root": str(self.root),
            "output": str(folder),
            "label_sets": [str(self.set_folder(s).relative_to(train)) for s in sets],
        }
        return Stage(
            "evaluation",
            "evaluation",
            "pipeline-report",
            lambda: settings,
            folder,
            outputs=[folder / "scores.json"],
            skip_reason=lambda: None if test_labels.is_dir() else f"{test_labels} does not exist (nothing to score on)",
        )

    def build(self) -> list[Stage]:
        """All stages in order: the data preparation's (for the data root it makes), then the method's.

        Raises:
            ValueError: two stages with the same id (e.g. a preparation's model named like a stage-1 model).
        """
        spec = self.spec
        prepare = spec.prepare
        stages = prepare.stages(self) if prepare is not None and prepare.prepares(self.root) else []
        for model in spec.stage1:
            stages += self.stage1_stages(model)
        if spec.selection != "none":
            stages.append(self.selection_stage())
        for model in spec.stage2:
            stages += self.stage2_stages(model)
        if spec.stage2:
            stages.append(self.submission_stage())
            stages.append(self.evaluation_stage())
        ids = [s.id for s in stages]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"stage ids used twice: {twice} (rename a model)")
        return stages
