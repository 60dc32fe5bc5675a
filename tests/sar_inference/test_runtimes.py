"""Runtimes and devices: one engine whatever runs the network; the choices that cannot work fail before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules.networks import NetworkConfig
from lightning_modules.sar_segmenter import SARSegmenter
from sar_inference.checkpoints import load_model
from sar_inference.runtimes import (
    OnnxRuntimeNetwork,
    OpenVINONetwork,
    RuntimeSettings,
    TorchNetwork,
    onnx_bytes,
    runtime_installed,
)
from sar_inference.settings import InferenceConfig
from sar_studies.checkpoints import save_checkpoint

SMALL = NetworkConfig(arch="Segformer", encoder="tu-test_efficientnet")


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    task = SARSegmenter(network=SMALL, inference=InferenceConfig(window=64, stride=32, flips=("none", "h")))
    return save_checkpoint(task, tmp_path_factory.mktemp("runtimes") / "small.ckpt")


def test_auto_takes_an_onnx_runtime_on_the_cpu_and_torch_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime_installed("openvino") and runtime_installed("onnxruntime")  # pinned in requirements.txt
    assert RuntimeSettings().resolve().runtime == "openvino"  # the fastest at equal output (BENCHMARKS.md)
    monkeypatch.setattr("sar_inference.runtimes.runtime_installed", lambda name: name == "onnxruntime")
    assert RuntimeSettings().resolve().runtime == "onnxruntime"
    monkeypatch.setattr("sar_inference.runtimes.runtime_installed", lambda name: False)
    assert RuntimeSettings().resolve().runtime == "torch"
    with pytest.raises(ModuleNotFoundError, match="runtime openvino needs the openvino package"):
        RuntimeSettings(runtime="openvino").resolve()
    monkeypatch.undo()
    assert RuntimeSettings(device="cuda").resolve().runtime == "torch"
    assert RuntimeSettings(precision="bf16-mixed").resolve().runtime == "torch"
    assert RuntimeSettings(runtime="torch").resolve().runtime == "torch"


def test_impossible_runtime_choices_fail_before_any_work() -> None:
    with pytest.raises(ValueError, match="runs on the CPU only, not on device 'cuda'"):
        RuntimeSettings(runtime="onnxruntime", device="cuda").resolve()
    with pytest.raises(ValueError, match="precision bf16-mixed needs the torch runtime"):
        RuntimeSettings(runtime="onnxruntime", precision="bf16-mixed").resolve()
    with pytest.raises(ValueError, match="runtime openvino runs on the CPU only"):
        RuntimeSettings(runtime="openvino", device="cuda:1").resolve()
    with pytest.raises(ValueError, match="precision 16-mixed needs a GPU"):
        RuntimeSettings(runtime="torch", precision="16-mixed").resolve()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the error is for machines without one")
def test_a_gpu_asked_for_on_a_machine_without_one_is_a_clear_error(small_ckpt: Path) -> None:
    with pytest.raises(ValueError, match="device 'cuda' asked for, but torch sees no CUDA GPU here"):
        load_model(small_ckpt).on_runtime(RuntimeSettings(device="cuda"))


def test_both_runtimes_give_the_same_probabilities_through_the_engine(small_ckpt: Path) -> None:
    raw = np.random.default_rng(0).integers(0, 256, (1, 90, 150), dtype=np.uint8)
    eager = load_model(small_ckpt)  # no runner: the network itself, as the tasks predict
    names = ("torch", "openvino", "onnxruntime")
    by_runtime = {name: eager.on_runtime(RuntimeSettings(runtime=name)) for name in names}
    assert isinstance(by_runtime["torch"].runner, TorchNetwork)
    assert isinstance(by_runtime["openvino"].runner, OpenVINONetwork)
    assert isinstance(by_runtime["onnxruntime"].runner, OnnxRuntimeNetwork)
    expected = eager.probs(raw)  # the checkpoint's window 64, stride 32, 2 flips
    for model in by_runtime.values():
        assert (model.probs(raw) - expected).abs().max().item() < 1e-4


def test_the_device_holds_the_network_and_every_window_batch(small_ckpt: Path) -> None:
    # The CPU is the only device here; a GPU takes the same path with --runtime.device cuda.
    model = load_model(small_ckpt).on_runtime(RuntimeSettings(runtime="torch", device="cpu"))
    seen: list[torch.device] = []
    model.network.register_forward_pre_hook(lambda module, args: seen.append(args[0].device))
    probs = model.probs(np.zeros((1, 70, 70), np.uint8))
    assert seen and all(d == torch.device("cpu") for d in seen) and probs.device == torch.device("cpu")
    assert all(p.device == torch.device("cpu") for p in model.network.parameters())


def test_autocast_runs_the_network_in_low_precision_and_averages_in_float32(small_ckpt: Path) -> None:
    raw = np.random.default_rng(1).integers(0, 256, (1, 64, 64), dtype=np.uint8)
    full = load_model(small_ckpt).on_runtime(RuntimeSettings(runtime="torch"))
    half = load_model(small_ckpt).on_runtime(RuntimeSettings(runtime="torch", precision="bf16-mixed"))
    dtypes: list[torch.dtype] = []
    half.network.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    low, high = half.probs(raw), full.probs(raw)
    assert dtypes and all(d == torch.bfloat16 for d in dtypes)  # the network ran under autocast
    assert low.dtype == torch.float32 and 0 < (low - high).abs().max().item() < 0.1


def test_openvino_splits_a_batch_over_its_streams_and_keeps_each_window_in_its_place() -> None:
    torch.manual_seed(0)
    task = SARSegmenter(network=SMALL).eval()
    runner = OpenVINONetwork(onnx_bytes(task.model, SMALL.output_stride, SMALL.in_channels))
    windows = torch.randn(5, 1, 64, 64)
    one_by_one = torch.cat([runner(window[None]) for window in windows])  # below the stream count: latency model
    assert len(runner.requests) >= 2  # a throughput model with streams to split over, on any CPU of 2+ cores
    assert (runner(windows) - one_by_one).abs().max().item() < 1e-5
