"""``python cli.py export``: a checkpoint's network as ONNX or TorchScript, for other tools and runtimes.

The exported network takes a normalised (N, C, H, W) float32 batch of any height and width (padded to
its output stride inside) and returns (N, classes, H, W) logits. What a tool needs to feed it and
read its output travels inside the file as the checkpoint's record (JSON: the network, the input
transform, i.e. how 8-bit pixels become the input, the inference settings and the class table with
names and colours): ONNX metadata ``sar_landcover``, TorchScript extra file ``sar_landcover.json``.
``map`` and ``submit`` take an exported ``.onnx`` file as ``--ckpt_path`` and run it with OpenVINO or
ONNX Runtime.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Literal

import torch

from datamodules.output_safety import Output, check_outputs, record_file
from datamodules.rasters import DataError, atomic_output
from sar_inference.checkpoints import RECORD_KEY, CheckpointRecord, LoadedModel, TaskKind, load_model
from sar_inference.runtimes import PaddedNetwork, onnx_bytes

ExportFormat = Literal["onnx", "torchscript"]
SUFFIXES: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
TORCHSCRIPT_RECORD = f"{RECORD_KEY}.json"


def export(ckpt_path: str, format: ExportFormat = "onnx", output: str | None = None, kind: TaskKind = "sar") -> Path:
    """Write the network of a checkpoint as ONNX (opset 17) or TorchScript, its record inside.

    Args:
        ckpt_path: a checkpoint of this project (``.ckpt``).
        format: ``onnx`` (for ONNX Runtime, OpenVINO, TensorRT, ...) or ``torchscript`` (for
            ``torch.jit.load``, LibTorch).
        output: the file to write (default: the checkpoint's name with ``.onnx`` or ``.pt``).
        kind: the model expected: ``sar`` (stage 2) or ``optical`` (stage 1).

    Returns:
        The written file.

    Raises:
        DataError: naming the file: an unreadable checkpoint or one of another kind.
        OutputRefusedError: the output may not be written (the checkpoint itself, a folder, a file
            this project did not write; see :mod:`datamodules.output_safety`), before the checkpoint loads.
    """
    path = Path(output) if output else Path(ckpt_path).with_suffix(SUFFIXES[format])
    check_outputs("export", [Output(path, "file", "--output")], inputs=[Path(ckpt_path)])
    model = load_model(ckpt_path, kind=kind)
    record = json.dumps(model.record.to_dict())
    network, config = model.network, model.record.network
    with atomic_output(path) as tmp:
        if format == "onnx":
            import onnx

            proto = onnx.load_from_string(onnx_bytes(network, config.output_stride, config.in_channels))
            entry = proto.metadata_props.add()
            entry.key, entry.value = RECORD_KEY, record
            proto.doc_string = "SAR land-cover network: normalised (N, C, H, W) float32 in, (N, K, H, W) logits out"
            onnx.save(proto, tmp)
        else:
            example = torch.zeros(1, config.in_channels, 64, 64)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings: the shape arithmetic is traced as it should be
                traced = torch.jit.trace(PaddedNetwork(network, config.output_stride).eval(), example)
            torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_RECORD: record})
    record_file(path, "export")
    return path


def exported_record(path: str | os.PathLike, metadata: dict[str, str]) -> CheckpointRecord:
    """The record an exported model carries.

    Raises:
        DataError: the file carries no record (not exported by this project).
    """
    if RECORD_KEY not in metadata:
        raise DataError(path, f"carries no {RECORD_KEY} record: not a model exported by `python cli.py export`")
    return CheckpointRecord.from_dict(json.loads(metadata[RECORD_KEY]), Path(path))


def load_onnx_model(path: str | os.PathLike, kind: TaskKind | None = "sar") -> LoadedModel:
    """An exported ``.onnx`` model with its record; :meth:`LoadedModel.on_runtime` gives it an ONNX runtime.

    Raises:
        DataError: naming the file: missing, not an ONNX model, no record, or a model of another kind.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file does not exist")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's decode errors, and onnx's own
        raise DataError(path, f"unreadable as an ONNX model ({type(err).__name__})") from None
    record = exported_record(path, {entry.key: entry.value for entry in proto.metadata_props})
    if kind is not None and record.kind != kind:
        raise DataError(path, f"is a {record.kind} model, but this command needs a {kind} model")
    return LoadedModel(path, record, None)
