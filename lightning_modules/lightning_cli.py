"""The LightningCLI of this project: both stages' tasks and datamodules, forced checkpoints, config bases,
no option prefixes, and every output folder checked against the output rule before the run starts."""

from __future__ import annotations

import sys

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from datamodules.output_safety import Output, check_outputs
from lightning_modules.config_bases import BASE_KEY, expand_bases
from lightning_modules.prediction_writer import TileWriter
from sar_landcover.errors import HELP_EPILOG

PREDICTION_CHOICES = ("inference", "predict_with")
"""Model arguments a command sets over a checkpoint's own: how to predict, not what the network is."""

TRAINER_DEFAULTS = {"default_root_dir": "runs"}


class MapperCLI(LightningCLI):
    """LightningCLI with always-present, configurable checkpoints (best val mIoU and latest), the tile writer by
    default, and experiment configs that build on base fragments (``base:``, see ``config_bases``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            f"--{BASE_KEY}",
            type=list[str],
            default=[],
            help="config fragments a config file builds on, applied before it (in a file: base: [a.yaml, b.yaml]; "
            "paths relative to the working folder, else to the repository)",
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/mIoU",
                "checkpoint.mode": "max",
                "checkpoint.save_last": False,
                # The best checkpoint feeds predict, map and the next stage, none of which needs the
                # optimiser's state (twice the weights with Adam); resuming uses last.ckpt.
                "checkpoint.save_weights_only": True,
                # Lightning's save_last only refreshes when a best checkpoint is written; this one
                # rewrites last.ckpt at every validation, so a killed run resumes from its latest state.
                "last_checkpoint.filename": "last",
                "last_checkpoint.enable_version_counter": False,
                "checkpoint.filename": "best-{step}",
                "checkpoint.auto_insert_metric_name": False,
                # Acts in `predict` only: writes labels/ and soft/ of every tile into the datamodule's
                # prediction folders. A config's own `callbacks:` list replaces it; `callbacks+:` adds to it.
                "trainer.callbacks": [{"class_path": "lightning_modules.prediction_writer.TileWriter"}],
            }
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        # The fragments a config names under `base:` are applied before it, as if given with --config.
        if not isinstance(args, (dict, Namespace)):
            try:
                args = expand_bases(sys.argv[1:] if args is None else list(args))
            except ValueError as error:
                parser.error(str(error))
        self.config = parser.parse_args(args) if not isinstance(args, (dict, Namespace)) else parser.parse_object(args)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI rebuilds the model from a checkpoint's hyperparameters over the config. That
        # is right for the network (the weights must fit it), but how to predict (window, stride,
        # TTA; which network of a mean teacher) is the command's choice: the config's are kept.
        subcommand = self.config.get("subcommand")
        model = self.config[subcommand].get("model") if subcommand else None
        init_args = getattr(model, "init_args", None)
        chosen = {key: getattr(init_args, key, None) for key in PREDICTION_CHOICES}
        super()._parse_ckpt_path()
        rebuilt = self.config[subcommand].model.get("init_args", {}) if subcommand else {}
        for key, value in chosen.items():
            if value is not None and key in rebuilt:
                setattr(self.config[subcommand].model.init_args, key, value)

    def before_instantiate_classes(self) -> None:
        # Writers put predictions on disk; also holding every tile's probabilities in memory would not
        # scale, so predict returns nothing unless asked to.
        if self.subcommand == "predict" and self.config.predict.return_predictions is None:
            self.config.predict.return_predictions = False
        # The saved config.yaml is complete: it builds on nothing.
        if self.subcommand is not None:
            del self.config[self.subcommand][BASE_KEY]

    def check_outputs(self) -> None:
        """Refuse, before the run starts, any folder the trainer, its loggers, checkpoints or writers would use
        that the output rule forbids (see :mod:`datamodules.output_safety`); claim the others.

        Inputs are the data root and, but for ``fit`` (which resumes by rewriting its own checkpoints),
        ``ckpt_path``.
        """
        trainer, subcommand = self.trainer, self.subcommand
        check_root = getattr(self.datamodule, "check_root", None)
        if check_root is not None:  # a missing data root fails before any output folder is claimed
            check_root()
        outputs = [Output(trainer.default_root_dir, "folder", "trainer.default_root_dir")]
        outputs += [
            Output(logger.save_dir, "folder", f"the save_dir of {type(logger).__name__}")
            for logger in trainer.loggers
            if getattr(logger, "save_dir", None)
        ]
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath and subcommand == "fit":
                outputs.append(Output(callback.dirpath, "folder", "the dirpath of a ModelCheckpoint"))
            if isinstance(callback, TileWriter) and subcommand == "predict":
                label_dir, soft_dir = callback.folders(self.datamodule)
                outputs.append(Output(label_dir, "folder", "the TileWriter's label folder"))
                if soft_dir is not None:
                    outputs.append(Output(soft_dir, "folder", "the TileWriter's soft-map folder"))
        ckpt = self.config_init[subcommand].get("ckpt_path") if subcommand != "fit" else None
        check_outputs(subcommand, outputs, inputs=[getattr(self.datamodule, "root", None), ckpt])

    before_fit = before_validate = before_test = before_predict = check_outputs


def run_lightning_cli(argv: list[str] | None) -> None:
    """``fit`` / ``validate`` / ``test`` / ``predict`` with any task and datamodule of the project."""
    MapperCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        trainer_defaults=TRAINER_DEFAULTS,
        # A re-run (e.g. resuming a killed stage) records the config it ran with, replacing the old one.
        save_config_kwargs={"overwrite": True},
        # No option prefixes: --trainer.max_step must fail at parse time, not be taken as max_steps.
        parser_kwargs={"allow_abbrev": False, "epilog": HELP_EPILOG}
        | {
            command: {"allow_abbrev": False, "epilog": HELP_EPILOG}
            for command in ("fit", "validate", "test", "predict")
        },
        args=argv,
    )
