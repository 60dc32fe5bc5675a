"""Where and how a loaded network runs: PyTorch eager (CPU or GPU, optional autocast) or ONNX Runtime (CPU).

A runtime only replaces the call "normalised window batch -> logits" that the engine makes; reading,
windows, TTA, ensembles and writing stay one code path whatever runs the network. ONNX Runtime runs
the network exported to ONNX in memory when the checkpoint is loaded (or an exported ``.onnx``
file); ``auto``, the default, takes it on the CPU when it is installed (it is pinned in
requirements.txt), since it maps several times faster there at equal output (BENCHMARKS.md), and
PyTorch on a GPU.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

Runtime = Literal["auto", "torch", "onnxruntime"]
Precision = Literal["32", "bf16-mixed", "16-mixed"]
AUTOCAST_DTYPES: dict[str, torch.dtype] = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
ONNX_OPSET = 17


@dataclass(frozen=True)
class RuntimeSettings:
    """Where the networks of ``map``, ``submit`` and the Python API run."""

    runtime: Runtime = "auto"
    """``torch`` (PyTorch eager), ``onnxruntime`` (CPU only) or ``auto``: ONNX Runtime on the CPU when
    installed, else PyTorch."""
    device: str = "cpu"
    """Torch device of the network and the window batches: ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
    precision: Precision = "32"
    """Autocast precision of the torch runtime (``bf16-mixed`` or ``16-mixed`` on a GPU); probabilities
    are averaged in float32 whatever the network runs in."""

    def resolve(self) -> RuntimeSettings:
        """These settings with ``auto`` decided, checked.

        Raises:
            ValueError: ONNX Runtime asked for on another device than the CPU, or with autocast;
                float16 autocast on the CPU.
            ModuleNotFoundError: ONNX Runtime asked for but not installed.
        """
        device = torch.device(self.device)
        runtime = self.runtime
        if runtime == "auto":
            cpu_only = device.type == "cpu" and self.precision == "32"
            runtime = "onnxruntime" if cpu_only and onnxruntime_installed() else "torch"
        if runtime == "onnxruntime":
            if device.type != "cpu":
                raise ValueError(f"runtime onnxruntime runs on the CPU only, not on device {self.device!r}")
            if self.precision != "32":
                raise ValueError(f"precision {self.precision} needs the torch runtime (autocast)")
            if not onnxruntime_installed():
                raise ModuleNotFoundError("runtime onnxruntime needs the onnxruntime package: pip install onnxruntime")
        if device.type == "cpu" and self.precision == "16-mixed":
            raise ValueError("precision 16-mixed needs a GPU; on the CPU use 32 or bf16-mixed")
        return dataclasses.replace(self, runtime=runtime)


def onnxruntime_installed() -> bool:
    """Whether ONNX Runtime can be imported."""
    return importlib.util.find_spec("onnxruntime") is not None


class PaddedNetwork(nn.Module):
    """A network that takes any height and width: pads to a multiple of its output stride, crops back.

    The same arithmetic as :func:`lightning_modules.networks.padded_forward`, written so that tracing
    (ONNX, TorchScript) keeps the height and width dynamic.
    """

    def __init__(self, network: nn.Module, output_stride: int) -> None:
        super().__init__()
        self.network = network
        self.output_stride = output_stride

    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2], images.shape[-1]
        pad_h = (self.output_stride - height % self.output_stride) % self.output_stride
        pad_w = (self.output_stride - width % self.output_stride) % self.output_stride
        return self.network(F.pad(images, (0, pad_w, 0, pad_h)))[..., :height, :width]


def onnx_bytes(network: nn.Module, output_stride: int, in_channels: int, side: int = 64) -> bytes:
    """The network as an ONNX model (opset 17) with dynamic batch, height and width.

    Exported with PyTorch's TorchScript-based exporter (no extra package; the newer exporter needs
    onnxscript); its deprecation and tracer warnings are silenced here.
    """
    wrapped = PaddedNetwork(network, output_stride).eval()
    example = torch.zeros(1, in_channels, side, side, device=next(network.parameters()).device)
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, (example,), buffer, input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes}, opset_version=ONNX_OPSET, dynamo=False,
        )  # fmt: skip
    return buffer.getvalue()


class OnnxRuntimeNetwork:
    """Logits of normalised (N, C, H, W) float32 batches from an ONNX model, with ONNX Runtime on the CPU.

    Args:
        model: the serialised ONNX model (bytes) or the path of an ``.onnx`` file.
    """

    def __init__(self, model: bytes | str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: Tensor) -> Tensor:
        batch = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: batch})[0])


class TorchNetwork:
    """Logits of normalised batches from a torch network on its device, padded to its output stride.

    Args:
        network: the network, in eval mode, on the device.
        output_stride: inputs are padded to a multiple of this.
        precision: ``32``, or an autocast precision (``bf16-mixed``, ``16-mixed``).
    """

    def __init__(self, network: nn.Module, output_stride: int, precision: Precision = "32") -> None:
        self.network = PaddedNetwork(network, output_stride)
        self.device = next(network.parameters()).device
        self.dtype = AUTOCAST_DTYPES.get(precision)

    def __call__(self, images: Tensor) -> Tensor:
        images = images.to(self.device)
        if self.dtype is None:
            return self.network(images)
        with torch.autocast(self.device.type, dtype=self.dtype):
            return self.network(images).float()


def network_runner(
    network: nn.Module, output_stride: int, in_channels: int, settings: RuntimeSettings
) -> Callable[[Tensor], Tensor]:
    """The callable that runs ``network`` as ``settings`` say (resolved), the network moved to its device.

    Raises:
        ValueError: an impossible combination, or a CUDA device where torch sees none.
    """
    settings = settings.resolve()
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {settings.device!r} asked for, but torch sees no CUDA GPU here (use cpu)")
    network = network.to(device).eval()
    if settings.runtime == "onnxruntime":
        return OnnxRuntimeNetwork(onnx_bytes(network, output_stride, in_channels))
    return TorchNetwork(network, output_stride, settings.precision)
