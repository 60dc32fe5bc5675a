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

import importlib
from collections.abc import Callable
from typing import Any

# name -> "module:function"; a tool imports only its own module, not Lightning.
TOOLS = {
    "make-demo-data": "datamodules.synthetic:generate_demo_data",
    "select-pseudo-labels": "lightning_modules.selection:select_pseudo_labels",
    "map": "lightning_modules.scene_mapper:map_scene",
    "submit": "lightning_modules.submission:submit",
    "evaluate": "lightning_modules.evaluation:evaluate",
    "pipeline-report": "pipeline.report:pipeline_report",
    "install-official-labels": "pipeline.official_labels:install_official_labels",
}


def tool(name: str) -> Callable[..., Any]:
    """The function behind a tool's name."""
    module, function = TOOLS[name].split(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the pipeline, a tool (the first argument names it) or LightningCLI."""
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] == "pipeline":
        from pipeline.runner import main as pipeline_main

        pipeline_main(words[1:])
        return
    if words and words[0] in TOOLS:
        from jsonargparse import auto_cli

        auto_cli(tool(words[0]), args=words[1:], as_positional=False)
        return
    from lightning_modules.lightning_cli import run_lightning_cli

    run_lightning_cli(argv)


if __name__ == "__main__":
    main()
