"""The command line of the SAR land-cover mapper: every command, dispatched by its first word.

python cli.py fit --config experiments/demo_sar.yaml        # LightningCLI: fit/validate/test/predict
python cli.py make-demo-data --root data/demo               # write the synthetic OEM + OEM-SAR
python cli.py map --ckpt_path CKPT --input SCENE.tif --output MAP.tif   # map a SAR scene of any size
python cli.py export --ckpt_path CKPT --format onnx                 # the network as ONNX or TorchScript
python cli.py convert --input SCENE.tif --output SCENE_8BIT.tif --scaling.source db   # 8-bit SAR
python cli.py submit --sar_dir DIR --soft_dirs "[A,B]" --output OUT  # contest PNGs + zip
python cli.py evaluate --predictions OUT --labels DIR                # mIoU + per-class IoU
python cli.py pipeline --config experiments/demo.yaml       # the whole method, stage by stage
"""

from __future__ import annotations

import os
import sys

# Before any import that reads them: no update check, no hub look-ups, W&B offline unless configured
# (an empty WANDB_API_KEY, as a CI secret that is not set, configures nothing).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
if not os.environ.get("WANDB_MODE") and not os.environ.get("WANDB_API_KEY", "").strip():
    os.environ["WANDB_MODE"] = "offline"

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

from sar_landcover import __version__
from sar_landcover.errors import HELP_EPILOG, run_with_one_line_errors, take_verbose_flag


class Tool(NamedTuple):
    """A command run by one function of one module (imported only when the command runs)."""

    target: str
    """``module:function``."""
    summary: str


TOOLS: dict[str, Tool] = {
    "make-demo-data": Tool(
        "sar_synthetic.profiles:make_demo_data",
        "write the synthetic OEM + OEM-SAR (the miniature, or a replica of the download)",
    ),
    "select-pseudo-labels": Tool(
        "sar_inference.selection:select_pseudo_labels", "combine pseudo-label sets (agreement, soft ensemble)"
    ),
    "map": Tool("sar_inference.scene_mapper:map_scene", "map a SAR scene of any size to a land-cover GeoTIFF"),
    "export": Tool("sar_inference.export:export", "a checkpoint's network as ONNX or TorchScript, its record inside"),
    "convert": Tool("datamodules.sar_convert:convert", "write the 8-bit version of a SAR scene (dB, float, uint16)"),
    "submit": Tool("sar_inference.submission:submit", "the contest submission: one PNG per SAR test tile, zipped"),
    "evaluate": Tool("sar_inference.evaluation:evaluate", "official mIoU of a folder of label maps"),
    "pipeline-report": Tool("sar_pipeline.report:pipeline_report", "the evaluation table of a pipeline run"),
    "install-official-labels": Tool(
        "sar_demo.official_labels:install_official_labels", "make a demo label set its train/labels"
    ),
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def tool(name: str) -> Callable[..., Any]:
    """The function behind a tool's name."""
    module, function = TOOLS[name].target.split(":")
    return getattr(importlib.import_module(module), function)


def usage() -> str:
    """The list of every command, as ``--help`` prints it."""
    tools = "\n".join(f"  {name:<24}{entry.summary}" for name, entry in TOOLS.items())
    return (
        f"usage: cli.py COMMAND [options]        (sar-landcover {__version__})\n\n"
        f"train and score models (LightningCLI):\n  {', '.join(LIGHTNING_COMMANDS)}\n"
        "run the whole method, stage by stage:\n  pipeline\n"
        f"tools:\n{tools}\n\n"
        "cli.py COMMAND --help shows the options of one command; cli.py --version the version.\n"
        f"{HELP_EPILOG}"
    )


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the pipeline, a tool (the first argument names it) or LightningCLI.

    Errors about the input print one line and exit with status 1 (see :mod:`sar_landcover.errors`).
    """
    words = take_verbose_flag(sys.argv[1:] if argv is None else argv)
    if argv is None:  # LightningCLI (and its DDP launcher) read the command line from sys.argv
        sys.argv[1:] = words
    if words and words[0] == "--version":
        print(f"sar-landcover {__version__}")
        return
    if not words or words[0] in ("-h", "--help"):
        print(usage())
        return
    run_with_one_line_errors(_dispatch, words, argv is None)


def _dispatch(words: list[str], from_command_line: bool) -> None:
    if words[0] == "pipeline":
        from sar_pipeline.runner import main as pipeline_main

        pipeline_main(words[1:])
        return
    if words[0] in TOOLS:
        from jsonargparse import auto_cli, set_parsing_settings

        # The settings dataclasses document each field below it: --help shows those texts.
        set_parsing_settings(docstring_parse_attribute_docstrings=True)
        # No option prefixes: a typo such as --ckpt for --ckpt_path fails at parse time.
        auto_cli(
            tool(words[0]),
            args=words[1:],
            as_positional=False,
            allow_abbrev=False,
            epilog=HELP_EPILOG,
            prog=f"cli.py {words[0]}",
        )
        return
    from lightning_modules.lightning_cli import run_lightning_cli

    run_lightning_cli(None if from_command_line else words)
