"""The demo's data preparation: generate the synthetic miniature into the demo's own root, then make its
official labels as the real ones were made (a source-only optical model labels the OEM-SAR train optical).

Named in a pipeline YAML as ``prepare: {class_path: sar_demo.preparation.DemoPreparation, init_args:
{...}}``. Its stages run only when the pipeline's ``data_root`` is the demo's own ``root``: a pipeline
pointed at any other folder (the real download, or a mistyped path) gets no generated data and no
relabelling, and a missing one is an error.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from datamodules.layout import NOISE_MODEL_LABELS, OEM_SAR_DIR
from datamodules.output_safety import Output
from sar_demo.official_labels import official_labels_marker
from sar_pipeline.preparation import DataPreparation
from sar_pipeline.spec import Stage1Model, model_problems
from sar_pipeline.stages import Stage, StageBuilder
from sar_synthetic.config import SyntheticConfig
from sar_synthetic.layout_writer import MARKER as SYNTHETIC_MARKER
from sar_synthetic.layout_writer import demo_data_complete


class DemoPreparation(DataPreparation):
    """Generate the synthetic OEM + OEM-SAR into ``root`` and (optionally) make its official labels.

    Args:
        root: the demo's own data root: data is generated only there, and only when the pipeline's
            ``data_root`` names it (a pipeline pointed elsewhere runs on that data as it is).
        settings: size, seed and difficulty of the generated data.
        official_labeller: make the official labels as the real ones were made: this (source-only)
            optical model is fitted on the generated OEM and its pseudo-labels of the OEM-SAR train
            optical replace ``train/labels`` (the generator's noise-model labels move to
            ``train/labels_noise_model``). Once per data root. None keeps the generator's labels.
    """

    def __init__(
        self,
        root: str = "data/demo",
        settings: SyntheticConfig = SyntheticConfig(),
        official_labeller: Stage1Model | None = None,
    ) -> None:
        self.root = root
        self.settings = settings
        self.official_labeller = official_labeller

    def prepares(self, data_root: Path) -> bool:
        return Path(self.root).resolve() == Path(data_root).resolve()

    def describe(self) -> str:
        return (
            f"the demo generates its data only into its own root {self.root}; to generate it into another folder, "
            "give that folder as both --data_root and --prepare.init_args.root"
        )

    def models(self) -> list[str]:
        return [self.official_labeller.name] if self.official_labeller else []

    def checkpoint(self, name: str, builder: StageBuilder) -> str:
        """The labeller's checkpoint: the one its installed labels record (fitted by the first run on this
        data root), else the one this run fits."""
        if self.official_labeller is None or name != self.official_labeller.name:
            return super().checkpoint(name, builder)
        marker = official_labels_marker(builder.root)
        if marker.is_file():
            recorded = json.loads(marker.read_text()).get("checkpoint")
            if recorded:
                return str(recorded)
        return builder.checkpoint_of(builder.run / "stage1" / name, f"stage1/{name}")

    def problems(self) -> list[str]:
        return model_problems("official_labeller", [self.official_labeller]) if self.official_labeller else []

    def stages(self, builder: StageBuilder) -> list[Stage]:
        """``data`` (generate, unless complete), then the labeller's fit, predict and install stages."""
        root = builder.root
        settings = {"root": str(root), "settings": asdict(self.settings)}
        data = Stage(
            "data",
            "data",
            "make-demo-data",
            lambda: settings,
            builder.run / "data",
            writes=[Output(root, "generated_data", "data_root")],
            complete_check=lambda: demo_data_complete(root),
            tracked=False,
        )
        return [data, *self.official_label_stages(builder)] if self.official_labeller else [data]

    def official_label_stages(self, builder: StageBuilder) -> list[Stage]:
        """Fit the source-only labeller, write its set, install the set as ``train/labels``.

        All three count as complete once the data root records installed official labels, so a
        second run on the same data (or a resumed one) never relabels it.
        """
        labeller = self.official_labeller
        assert labeller is not None
        root, marker = builder.root, official_labels_marker(builder.root)

        def not_synthetic() -> str | None:
            if (root / SYNTHETIC_MARKER).is_file():
                return None
            return f"{root} is not generated demo data (no {SYNTHETIC_MARKER}): its official labels are its own"

        stages = builder.stage1_stages(labeller)
        for stage in stages:
            stage.complete_check = lambda stage=stage: marker.is_file() or stage.has_finished()
            stage.skip_reason = not_synthetic
        label_set, fit_folder = builder.set_name(labeller.name), builder.run / "stage1" / labeller.name
        install = Stage(
            "official_labels",
            "official_labels",
            "install-official-labels",
            lambda: {
                "root": str(root),
                "label_set": label_set,
                "checkpoint": builder.checkpoint_of(fit_folder, f"stage1/{labeller.name}"),
            },
            builder.run / "official_labels",
            writes=[
                Output(path, "generated_data", "data_root")
                for path in (builder.set_folder("official"), root / OEM_SAR_DIR / "train" / NOISE_MODEL_LABELS, marker)
            ],
            produces=builder.set_ref("official"),
            uses=[builder.set_ref(label_set)],
            complete_check=marker.is_file,
            skip_reason=not_synthetic,
        )
        return [*stages, install]
