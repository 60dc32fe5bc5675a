"""Command line of the SAR land-cover mapper.

python cli.py fit --config experiments/demo_sar.yaml        # LightningCLI: fit/validate/test/predict
python cli.py make-demo-data --root data/demo               # write the synthetic OEM + OEM-SAR
python cli.py map --ckpt_path CKPT --input SCENE.tif --output MAP.tif   # map a SAR scene of any size
python cli.py submit --sar_dir DIR --soft_dirs "[A,B]" --output OUT  # contest PNGs + zip
python cli.py evaluate --predictions OUT --labels DIR                # mIoU + per-class IoU
python cli.py pipeline --config experiments/demo.yaml       # the whole method, stage by stage
"""

from __future__ import annotations

import os
import sys

# Before any import that reads them: no update check, no hub look-ups, W&B offline unless configured.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
if "WANDB_MODE" not in os.environ and "WANDB_API_KEY" not in os.environ:
    os.environ["WANDB_MODE"] = "offline"

from jsonargparse import auto_cli
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from datamodules.synthetic import generate_demo_data
from lightning_modules.evaluation import evaluate
from lightning_modules.scene_mapper import map_scene
from lightning_modules.selection import select_pseudo_labels
from lightning_modules.submission import submit
from pipeline.report import pipeline_report

TRAINER_DEFAULTS = {
    "default_root_dir": "runs",
    "logger": {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"project": "sar-landcover", "save_dir": "runs"},
    },
}


class MapperCLI(LightningCLI):
    """LightningCLI with always-present, configurable checkpoints (best val mIoU and latest)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/mIoU",
                "checkpoint.mode": "max",
                "checkpoint.save_last": False,
                # Lightning's save_last only refreshes when a best checkpoint is written; this one
                # rewrites last.ckpt at every validation, so a killed run resumes from its latest state.
                "last_checkpoint.filename": "last",
                "last_checkpoint.enable_version_counter": False,
                "checkpoint.filename": "best-{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def before_instantiate_classes(self) -> None:
        # Writers put predictions on disk; also holding every tile's probabilities in memory would not
        # scale, so predict returns nothing unless asked to.
        if self.subcommand == "predict" and self.config.predict.return_predictions is None:
            self.config.predict.return_predictions = False


TOOLS = {
    "make-demo-data": generate_demo_data,
    "select-pseudo-labels": select_pseudo_labels,
    "map": map_scene,
    "submit": submit,
    "evaluate": evaluate,
    "pipeline-report": pipeline_report,
}


def main(argv: list[str] | None = None) -> None:
    """Dispatch to a tool (first argument names it) or to LightningCLI."""
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] == "pipeline":
        from pipeline.runner import main as pipeline_main

        pipeline_main(words[1:])
        return
    if words and words[0] in TOOLS:
        auto_cli(TOOLS[words[0]], args=words[1:], as_positional=False)
        return
    MapperCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        trainer_defaults=TRAINER_DEFAULTS,
        # A re-run (e.g. resuming a killed stage) records the config it ran with, replacing the old one.
        save_config_kwargs={"overwrite": True},
        args=argv,
    )


if __name__ == "__main__":
    main()
