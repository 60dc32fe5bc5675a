"""Where and how a loaded network runs: PyTorch eager (CPU or GPU, optional autocast), OpenVINO or ONNX Runtime (CPU).

A runtime only replaces the call "normalised window batch -> logits" that the engine makes; reading,
windows, TTA, ensembles and writing stay one code path whatever runs the network. OpenVINO and ONNX
Runtime run the network exported to ONNX in memory when the checkpoint is loaded (or an exported
``.onnx`` file), in float32, so their probabilities equal PyTorch's to about 1e-4. ``auto``, the
default, takes on the CPU the fastest one installed (OpenVINO, then ONNX Runtime, both pinned in
requirements.txt; speed and difference measured in BENCHMARKS.md), and PyTorch on a GPU.
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

Runtime = Literal["auto", "torch", "openvino", "onnxruntime"]
CPU_RUNTIMES: tuple[str, ...] = ("openvino", "onnxruntime")
"""The ONNX runtimes, fastest first; ``auto`` takes the first installed. Both gave probabilities within
2.5e-5 of PyTorch's on the demo model and a ResNet-34 (BENCHMARKS.md)."""
Precision = Literal["32", "bf16-mixed", "16-mixed"]
AUTOCAST_DTYPES: dict[str, torch.dtype] = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
ONNX_OPSET = 17


@dataclass(frozen=True)
class RuntimeSettings:
    """Where the networks of ``map``, ``submit`` and the Python API run."""

    runtime: Runtime = "auto"
    """``torch`` (PyTorch eager), ``openvino`` or ``onnxruntime`` (CPU only), or ``auto``: on the CPU
    OpenVINO, else ONNX Runtime, else PyTorch, whichever is installed first; PyTorch elsewhere."""
    device: str = "cpu"
    """Torch device of the network and the window batches: ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
    precision: Precision = "32"
    """``32``, or ``bf16-mixed`` / ``16-mixed``: autocast of the torch runtime (on a GPU), or OpenVINO's
    bfloat16 inference (``bf16-mixed``, on CPUs with AMX or AVX-512 BF16; not equal to float32 to
    1e-4); probabilities are averaged in float32 whatever the network runs in."""

    def resolve(self) -> RuntimeSettings:
        """These settings with ``auto`` decided, checked.

        Raises:
            ValueError: OpenVINO or ONNX Runtime asked for on another device than the CPU, or with a
                precision it does not run (ONNX Runtime: 32 only; OpenVINO: 32, bf16-mixed);
                float16 on the CPU.
            ModuleNotFoundError: OpenVINO or ONNX Runtime asked for but not installed.
        """
        device = torch.device(self.device)
        runtime = self.runtime
        if runtime == "auto":
            installed = [r for r in CPU_RUNTIMES if runtime_installed(r)]
            onnx_ok = device.type == "cpu" and self.precision == "32"
            runtime = installed[0] if onnx_ok and installed else "torch"
        if runtime in CPU_RUNTIMES:
            if device.type != "cpu":
                raise ValueError(f"runtime {runtime} runs on the CPU only, not on device {self.device!r}")
            if self.precision != "32" and not (runtime == "openvino" and self.precision == "bf16-mixed"):
                raise ValueError(f"precision {self.precision} needs the torch runtime (autocast)")
            if not runtime_installed(runtime):
                raise ModuleNotFoundError(f"runtime {runtime} needs the {runtime} package: pip install {runtime}")
        if device.type == "cpu" and self.precision == "16-mixed":
            raise ValueError("precision 16-mixed needs a GPU; on the CPU use 32 or bf16-mixed")
        return dataclasses.replace(self, runtime=runtime)


def runtime_installed(runtime: str) -> bool:
    """Whether the package of an ONNX runtime (``openvino``, ``onnxruntime``) can be imported."""
    return importlib.util.find_spec(runtime) is not None


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


class OpenVINONetwork:
    """Logits of normalised (N, C, H, W) float32 batches from an ONNX model, with OpenVINO on the CPU.

    A batch of at least as many windows as OpenVINO has throughput streams (one per core or two) is
    split over them and run side by side, each stream on its own cores; a smaller batch (a whole tile,
    the last window) runs on one model compiled for latency, which uses every core. Both compile the
    same float32 network, so the split changes the speed, not the logits.

    Args:
        model: the serialised ONNX model (bytes) or the path of an ``.onnx`` file.
        precision: ``32`` (float32 inference, equal to PyTorch to 1e-4) or ``bf16-mixed`` (bfloat16
            where the CPU has it: faster, not equal).
    """

    def __init__(self, model: bytes | str, precision: Precision = "32") -> None:
        import openvino as ov

        source = io.BytesIO(model) if isinstance(model, bytes) else model
        network = ov.convert_model(source)
        hint = "bf16" if precision == "bf16-mixed" else "f32"  # OpenVINO's own default is bf16 on such CPUs
        core = ov.Core()
        self.latency = core.compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        throughput = core.compile_model(
            network, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "THROUGHPUT"}
        )
        self.requests = ov.AsyncInferQueue(throughput, int(throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))

    def __call__(self, images: Tensor) -> Tensor:
        batch = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        streams = len(self.requests)
        if streams < 2 or len(batch) < streams:
            return torch.from_numpy(np.array(self.latency([batch])[0]))
        parts = np.array_split(batch, streams)
        logits: list[np.ndarray] = [np.empty(0)] * len(parts)

        def keep(request, index: int) -> None:
            logits[index] = request.get_output_tensor(0).data.copy()

        self.requests.set_callback(keep)
        for index, part in enumerate(parts):
            self.requests.start_async({0: part}, index)
        self.requests.wait_all()
        return torch.from_numpy(np.concatenate(logits))


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
    if settings.runtime in CPU_RUNTIMES:
        return onnx_runner(onnx_bytes(network, output_stride, in_channels), settings)
    return TorchNetwork(network, output_stride, settings.precision)


def onnx_runner(model: bytes | str, settings: RuntimeSettings) -> Callable[[Tensor], Tensor]:
    """The runner of an ONNX model (bytes or a file) on the resolved ONNX runtime of ``settings``.

    Raises:
        ValueError: ``settings`` resolve to the torch runtime, which needs the network itself.
    """
    settings = settings.resolve()
    if settings.runtime == "openvino":
        return OpenVINONetwork(model, settings.precision)
    if settings.runtime == "onnxruntime":
        return OnnxRuntimeNetwork(model)
    raise ValueError(f"an ONNX model runs with runtime {' or '.join(CPU_RUNTIMES)} on the CPU, not {settings.runtime}")
