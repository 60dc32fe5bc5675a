"""Make the demo data's official labels the way the real ones were made.

The real OEM-SAR train labels are "pseudo-labels derived from optical images based on pre-trained
models" (DFC2025 baseline README): an optical model trained on OpenEarthMap, run on the OEM-SAR
optical tiles without any adaptation. The generator writes a hand-made noise model of the truth
instead (quick, and the knob of the label-noise sweep). When the demo's preparation names an
``official_labeller``, that source-only optical model is fitted and its pseudo-label set replaces
``train/labels`` here (``install-official-labels``); the generator's labels are kept beside them in
``train/labels_noise_model``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from datamodules.layout import (
    LABELS,
    NOISE_MODEL_LABELS,
    OEM_SAR_DIR,
    OFFICIAL_LABELS_RECORD,
    RGB_IMAGES,
    label_folder,
)
from datamodules.output_safety import FOLDER_MARK, Output, check_outputs
from datamodules.rasters import atomic_output

MARKER = OFFICIAL_LABELS_RECORD
NOISE_MODEL = NOISE_MODEL_LABELS


def official_labels_marker(root: str | os.PathLike) -> Path:
    """Where the record of the installed official labels lives under a data root."""
    return Path(root) / OEM_SAR_DIR / "train" / MARKER


def install_official_labels(root: str, label_set: str, checkpoint: str | None = None) -> Path:
    """Replace the synthetic ``train/labels`` by a pseudo-label set, keeping the generator's labels.

    Safe to re-run after an interruption at any point: the old labels are moved aside before the
    new ones are renamed into place, and the marker is written last.

    Args:
        root: a synthetic data root (written by ``make-demo-data``).
        label_set: the set under ``train/labels_pl/`` that becomes ``train/labels``.
        checkpoint: the model that wrote the set, recorded in the marker.

    Returns:
        The ``train/labels`` folder.

    Raises:
        OutputRefusedError: ``root`` is not synthetic data (its labels are left alone).
        UnsafeNameError: a set name that is not a plain folder name.
        ValueError: the set is missing or incomplete.
    """
    data = Path(root)
    train = data / OEM_SAR_DIR / "train"
    labels, kept, source = train / LABELS, train / NOISE_MODEL, label_folder(data, "train", label_set)
    marker = official_labels_marker(data)
    # Only data this project generated is relabelled: the rule refuses the labels of any other data root.
    outputs = [Output(path, "generated_data", "--root") for path in (labels, kept, marker)]
    check_outputs("install-official-labels", outputs, inputs=[source])
    if marker.is_file():
        return labels
    # Tiles without an optical partner cannot be labelled from optics: they get no label, as in every pseudo-label set.
    expected = sorted(p.name for p in (train / RGB_IMAGES).glob("*.tif"))
    written = {p.name for p in source.glob("*.tif")} if source.is_dir() else set()
    missing = [name for name in expected if name not in written]
    if missing:
        raise ValueError(f"pseudo-label set {source} lacks {len(missing)} of {len(expected)} tiles, e.g. {missing[0]}")
    partial = train / f".{LABELS}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns(FOLDER_MARK))  # train/labels is data, not a set
    if labels.is_dir() and not kept.exists():
        os.rename(labels, kept)
    shutil.rmtree(labels, ignore_errors=True)  # only left here by an interrupted earlier install
    os.rename(partial, labels)
    record = {"labels": str(labels), "from_set": label_set, "checkpoint": checkpoint, "generator_labels": str(kept)}
    with atomic_output(marker) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n")
    print(f"official labels: {labels} now holds the set {label_set}; the generator's labels are in {kept}")
    return labels
