"""The stages of a pipeline run: their commands, their fixed output paths and when they are complete.

Run folder layout (``<run>`` = ``spec.run_dir``)::

    <run>/stage1/<labeller>/     the demo's official labeller, if any (with pseudo_labels/<labeller>/ and
                                 official_labels/: its set installed as OEM-SAR train/labels)
    <run>/stage1/<model>/        checkpoints/{best-*,last}.ckpt, config.yaml, wandb/
    <run>/pseudo_labels/<model>/ config.yaml, wandb/   (the set itself: OEM-SAR train/labels_pl/<run name>-<model>/)
    <run>/selection/                                   (the set: train/labels_pl/<run name>-selected/)
    <run>/stage2/<model>/        checkpoints/{best-*,last}.ckpt, config.yaml, wandb/
    <run>/maps/<model>/          labels/ and soft/ GeoTIFFs of every test tile
    <run>/submission/            <tile>.png (0..8) and submission.zip
    <run>/evaluation/            scores.json, table.md

A stage is complete when its folder holds ``stage.json`` (written after its process exited 0)
and its outputs exist; a fit stage that is not complete resumes from its newest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

from datamodules.layout import OEM_SAR_DIR, label_folder
from sar_pipeline.launch import trainer_layout_args
from sar_pipeline.official_labels import official_labels_marker
from sar_pipeline.spec import PipelineSpec, Stage1Model, Stage2Model, resolve_config
from sar_tracking.artifacts import ArtifactRef

StageKind = Literal[
    "data", "official_labels", "stage1", "pseudo_labels", "selection", "stage2", "maps", "submission", "evaluation"
]
STAGE_KINDS: tuple[StageKind, ...] = get_args(StageKind)
MARKER = "stage.json"


@dataclass
class Stage:
    """One step of the pipeline, run as its own process.

    Attributes:
        id: ``<kind>`` or ``<kind>/<model>``; also its folder under the run folder and its W&B name.
        kind: what the stage does.
        subcommand: the ``cli.py`` subcommand.
        arguments: builds the arguments after the subcommand when the stage starts (paths of
            earlier stages' checkpoints and the resume checkpoint are only known then).
        folder: the stage's folder (config record, marker, logs).
        distributed: a Lightning fit/predict (launched on every device) rather than a one-process tool.
        outputs: paths that must exist for the stage to count as complete.
        produces: the W&B artifact the stage's output becomes.
        uses: the W&B artifacts it reads.
        complete_check: overrides the marker test (the demo data has a marker of its own).
    """

    id: str
    kind: StageKind
    subcommand: str
    arguments: Callable[[], list[str]]
    folder: Path
    distributed: bool = False
    outputs: list[Path] = field(default_factory=list)
    produces: ArtifactRef | None = None
    uses: list[ArtifactRef] = field(default_factory=list)
    complete_check: Callable[[], bool] | None = None

    def is_complete(self) -> bool:
        """True when the stage finished before and its outputs are still there."""
        if self.complete_check is not None:
            return self.complete_check()
        return self.has_finished()

    def has_finished(self) -> bool:
        """True when its process exited 0 before (the marker) and its outputs are still there."""
        return (self.folder / MARKER).is_file() and all(p.exists() for p in self.outputs)

    def mark_complete(self, command: list[str]) -> None:
        """Record that the stage finished, with the command it ran (written atomically)."""
        record = {"id": self.id, "command": command, "outputs": [str(p) for p in self.outputs]}
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{MARKER}.tmp"
        temporary.write_text(json.dumps(record, indent=2))
        os.replace(temporary, self.folder / MARKER)

    def clear_mark(self) -> None:
        """Forget that the stage finished (it is about to run again)."""
        (self.folder / MARKER).unlink(missing_ok=True)


def run_name(spec: PipelineSpec) -> str:
    """The run's name: the run folder's name (also the W&B group unless one is set)."""
    return Path(spec.run_dir).resolve().name


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


def resume_checkpoint(folder: Path) -> Path | None:
    """Newest of ``last.ckpt`` and Lightning's SLURM ``hpc_ckpt_*.ckpt`` of an unfinished fit."""
    candidates = [folder / "checkpoints" / "last.ckpt", *folder.glob("hpc_ckpt_*.ckpt")]
    existing = [p for p in candidates if p.is_file()]
    return max(existing, key=lambda p: p.stat().st_mtime) if existing else None


def _checkpoint_or_placeholder(folder: Path, stage_id: str) -> str:
    path = best_checkpoint(folder)
    return str(path) if path else f"<best checkpoint of {stage_id}>"


def _callback_arg(class_path: str, **init_args: object) -> dict:
    return {"class_path": class_path, "init_args": init_args}


def _lineage(produces: ArtifactRef, uses: list[ArtifactRef]) -> dict:
    return _callback_arg(
        "sar_tracking.lineage.ArtifactLineage", produces=asdict(produces), uses=[asdict(u) for u in uses]
    )


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

    def _set_ref(self, name: str) -> ArtifactRef:
        return ArtifactRef(f"labels-{name}", "pseudo-labels", str(self.set_folder(name)))

    def _model_ref(self, stage: str, model: str) -> ArtifactRef:
        folder = self.run / stage / model
        return ArtifactRef(f"{stage}-{model}-{self.name}", "model", str(best_checkpoint(folder) or folder))

    def labels_of(self, model: Stage2Model) -> str:
        """Label set a stage-2 model trains on."""
        return self.pseudo_set() if model.labels == "pseudo" else model.labels

    # --- shared argument blocks --------------------------------------------------------------------
    def lightning_args(self, stage_id: str, folder: Path, configs: list[str], extra: list[str]) -> list[str]:
        """Configs, the model's own arguments, then what the runner fixes (these win)."""
        logger = _callback_arg(
            "lightning.pytorch.loggers.WandbLogger",
            project=self.spec.tracking.project,
            name=stage_id,
            save_dir=str(folder),
            id=wandb_id(self.spec, stage_id),
        )
        return [
            *[f"--config={resolve_config(c).resolve()}" for c in configs],
            *extra,
            f"--seed_everything={self.spec.seed}",
            f"--trainer.default_root_dir={folder}",
            f"--trainer.logger={json.dumps(logger)}",
            f"--data.init_args.root={self.root}",
            "--data.init_args.demo_data=false",
            *trainer_layout_args(self.spec.launch, placeholders=self.dry_run),
        ]

    def fit_args(self, stage_id: str, folder: Path, configs: list[str], extra: list[str], lineage: dict) -> list[str]:
        """A fit with fixed checkpoint folders, resuming from its newest checkpoint if interrupted."""
        args = [
            *self.lightning_args(stage_id, folder, configs, extra),
            f"--checkpoint.dirpath={folder / 'checkpoints'}",
            f"--last_checkpoint.dirpath={folder / 'checkpoints'}",
            f"--trainer.callbacks+={json.dumps(lineage)}",
            # SLURM's warning signal, passed on by the runner: checkpoint after the current step, exit.
            f"--trainer.callbacks+={json.dumps(_callback_arg('lightning_modules.signal_checkpoint.CheckpointOnSignal'))}",
        ]
        resume = resume_checkpoint(folder)
        return [*args, f"--ckpt_path={resume}"] if resume else args

    def predict_args(
        self, stage_id: str, folder: Path, configs: list[str], extra: list[str], lineage: dict
    ) -> list[str]:
        """A predict whose only callbacks are the tile writer and the lineage record."""
        callbacks = [_callback_arg("lightning_modules.prediction_writer.TileWriter"), lineage]
        return [*self.lightning_args(stage_id, folder, configs, extra), f"--trainer.callbacks={json.dumps(callbacks)}"]

    # --- stages ------------------------------------------------------------------------------------
    def data_stage(self) -> Stage:
        settings = [f"--settings.{k}={json.dumps(v)}" for k, v in asdict(self.spec.demo_settings).items()]
        return Stage(
            "data",
            "data",
            "make-demo-data",
            lambda: [f"--root={self.root}", *settings],
            self.run / "data",
            # Data is generated only into a missing data root: an existing one (real data too) is used as it is.
            complete_check=lambda: self.root.is_dir() and any(self.root.iterdir()),
        )

    def official_label_stages(self, labeller: Stage1Model) -> list[Stage]:
        """Fit the source-only labeller, write its set, install the set as ``train/labels``.

        All three count as complete once the data root records installed official labels, so a
        second run on the same data (or a resumed one) never relabels it.
        """
        marker = official_labels_marker(self.root)
        stages = self.stage1_stages(labeller)
        for stage in stages:
            stage.complete_check = lambda stage=stage: marker.is_file() or stage.has_finished()
        label_set = self.set_name(labeller.name)
        fit_folder = self.run / "stage1" / labeller.name
        stages.append(
            Stage(
                "official_labels",
                "official_labels",
                "install-official-labels",
                lambda: [
                    f"--root={self.root}",
                    f"--label_set={label_set}",
                    f"--checkpoint={_checkpoint_or_placeholder(fit_folder, f'stage1/{labeller.name}')}",
                ],
                self.run / "official_labels",
                produces=self._set_ref("official"),
                uses=[self._set_ref(label_set)],
                complete_check=marker.is_file,
            )
        )
        return stages

    def stage1_stages(self, model: Stage1Model) -> list[Stage]:
        fit_folder, predict_folder = self.run / "stage1" / model.name, self.run / "pseudo_labels" / model.name
        fit_id, predict_id = f"stage1/{model.name}", f"pseudo_labels/{model.name}"
        produced = ArtifactRef(f"stage1-{model.name}-{self.name}", "model")
        pseudo = self.set_name(model.name)

        def predict_arguments() -> list[str]:
            lineage = _lineage(self._set_ref(pseudo), [self._model_ref("stage1", model.name)])
            return [
                *self.predict_args(predict_id, predict_folder, model.configs, model.args, lineage),
                f"--data.init_args.pseudo_label_set={pseudo}",
                f"--ckpt_path={_checkpoint_or_placeholder(fit_folder, fit_id)}",
            ]

        return [
            Stage(
                fit_id,
                "stage1",
                "fit",
                lambda: self.fit_args(fit_id, fit_folder, model.configs, model.args, _lineage(produced, [])),
                fit_folder,
                distributed=True,
                outputs=[fit_folder / "checkpoints" / "last.ckpt"],
            ),
            Stage(
                predict_id,
                "pseudo_labels",
                "predict",
                predict_arguments,
                predict_folder,
                distributed=True,
                outputs=[self.set_folder(pseudo)],
            ),
        ]

    def selection_stage(self) -> Stage:
        voters = self.spec.selection_models
        sets = [self.set_name(n) for n in (voters if voters is not None else [m.name for m in self.spec.stage1])]
        output = self.pseudo_set()
        return Stage(
            "selection",
            "selection",
            "select-pseudo-labels",
            lambda: [
                f"--root={self.root}",
                f"--sets={json.dumps(sets)}",
                f"--output={output}",
                f"--mode={self.spec.selection}",
            ],
            self.run / "selection",
            outputs=[self.set_folder(output)],
            produces=self._set_ref(output),
            uses=[self._set_ref(s) for s in sets],
        )

    def stage2_stages(self, model: Stage2Model) -> list[Stage]:
        fit_folder, maps_folder = self.run / "stage2" / model.name, self.run / "maps" / model.name
        fit_id, maps_id = f"stage2/{model.name}", f"maps/{model.name}"
        labels = self.labels_of(model)

        def fit_arguments() -> list[str]:
            extra = [*model.args, f"--data.init_args.label_set={labels}"]
            uses = [self._set_ref(labels)]
            if model.init_from:
                folder = self.run / "stage1" / model.init_from
                extra.append(
                    f"--model.init_args.network.encoder_weights={_checkpoint_or_placeholder(folder, 'stage1')}"
                )
                uses.append(self._model_ref("stage1", model.init_from))
            produced = ArtifactRef(f"stage2-{model.name}-{self.name}", "model")
            return self.fit_args(fit_id, fit_folder, model.configs, extra, _lineage(produced, uses))

        def maps_arguments() -> list[str]:
            lineage = _lineage(
                ArtifactRef(f"maps-{model.name}-{self.name}", "maps", str(maps_folder / "labels")),
                [self._model_ref("stage2", model.name)],
            )
            return [
                *self.predict_args(maps_id, maps_folder, model.configs, model.args, lineage),
                f"--data.init_args.prediction_dir={maps_folder}",
                f"--ckpt_path={_checkpoint_or_placeholder(fit_folder, fit_id)}",
            ]

        return [
            Stage(
                fit_id,
                "stage2",
                "fit",
                fit_arguments,
                fit_folder,
                distributed=True,
                outputs=[fit_folder / "checkpoints" / "last.ckpt"],
            ),
            Stage(
                maps_id,
                "maps",
                "predict",
                maps_arguments,
                maps_folder,
                distributed=True,
                outputs=[maps_folder / "labels", maps_folder / "soft"],
            ),
        ]

    def submission_stage(self) -> Stage:
        members = [m.name for m in self.spec.stage2 if m.ensemble] or [self.spec.stage2[0].name]
        folder = self.run / "submission"
        soft = [str(self.run / "maps" / m / "soft") for m in members]
        settings = self.spec.submission
        options = []
        if settings.class_weights is not None:
            options.append(f"--class_weights={json.dumps(settings.class_weights)}")
        if settings.nodata_min_area is not None:
            options.append(f"--nodata_min_area={settings.nodata_min_area}")
        return Stage(
            "submission",
            "submission",
            "submit",
            lambda: [
                f"--soft_dirs={json.dumps(soft)}",
                f"--sar_dir={self.root / OEM_SAR_DIR / 'test' / 'sar_images'}",
                f"--output={folder}",
                *options,
            ],
            folder,
            outputs=[folder / "submission.zip"],
            produces=ArtifactRef(f"submission-{self.name}", "submission", str(folder)),
            uses=[ArtifactRef(f"maps-{m}-{self.name}", "maps", str(self.run / "maps" / m / "labels")) for m in members],
        )

    def evaluation_stage(self) -> Stage:
        folder = self.run / "evaluation"
        sets = sorted({self.labels_of(m) for m in self.spec.stage2} | {self.set_name(m.name) for m in self.spec.stage1})
        train = self.root / OEM_SAR_DIR / "train"
        label_sets = [str(self.set_folder(s).relative_to(train)) for s in sets]
        return Stage(
            "evaluation",
            "evaluation",
            "pipeline-report",
            lambda: [
                f"--run_dir={self.run}",
                f"--data_root={self.root}",
                f"--output={folder}",
                f"--label_sets={json.dumps(label_sets)}",
            ],
            folder,
            outputs=[folder / "scores.json"],
        )

    def build(self) -> list[Stage]:
        """All stages in order; the evaluation only when the test set has labels."""
        spec = self.spec
        stages = [self.data_stage()] if spec.demo_data else []
        if spec.demo_data and spec.demo_official_labeller:
            stages += self.official_label_stages(spec.demo_official_labeller)
        for model in spec.stage1:
            stages += self.stage1_stages(model)
        if spec.selection != "none":
            stages.append(self.selection_stage())
        for model in spec.stage2:
            stages += self.stage2_stages(model)
        if spec.stage2:
            stages.append(self.submission_stage())
            stages.append(self.evaluation_stage())
        return stages
