"""Writes this folder's checkpoints and expected probabilities with the code BEFORE self-contained checkpoints.

It must run against commit 485a103 (the layout commit, where the input normalisation still lived in
the datamodules), not against the current code:

    mkdir /tmp/legacy && git archive 485a103 | tar -x -C /tmp/legacy
    cd /tmp/legacy && PYTHONPATH=/tmp/legacy python REPO/tests/data/legacy_checkpoints/make_legacy_checkpoints.py \
        REPO/tests/data/legacy_checkpoints

Three checkpoints, the two ways that code saved them:

* ``sar_cli.ckpt``: ``python cli.py fit`` (hparams are dicts with ``_class_path``, the datamodule's
  in ``datamodule_hyper_parameters``), SAR replicated to 3 channels with ImageNet statistics;
* ``sar_python.ckpt``: a ``SARSegmenter`` and ``SARDataModule`` built in Python and fitted with
  ``Trainer.fit`` (hparams are the config dataclasses), 1 channel / 255;
* ``optical_python.ckpt``: a stage-1 ``OpticalAdapter`` (mean teacher), built in Python. It predicts with
  its student: that code could not train one set to predict with its teacher (its ``forward`` used the
  teacher for the training loss too, which has no gradient), so no such legacy checkpoint exists.

Each was fitted for 2 steps on the tiny synthetic data (Segformer over timm's ``test_efficientnet``,
the smallest network the architecture list allows). To keep the files small, every convolution and
linear weight tensor was then redrawn from three values {-s, 0, s}, 90 % zeros (s keeps the tensor's standard deviation;
student and teacher drawn independently) and the BatchNorm statistics refitted on random inputs (so
the output depends on the input), the optimiser moments were zeroed (inference never reads them)
and the zip container re-packed with deflate (lossless; ``torch.load`` reads it as before). Hyperparameters,
keys and every other field stay exactly as that code wrote them. ``expected.npz`` then holds the
probabilities the OLD loader (``sar_inference.checkpoints.load_task`` with its normaliser; for the Python
checkpoints with ``SyntheticConfig`` registered as a safe class, see ``main``) gives on
the fixed inputs ``sar_input`` (1 x 24 x 40 uint8) and ``rgb_input`` (3 x 24 x 40 uint8;
windows of 32 at stride 16: one axis padded, the other with overlapping windows).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import lightning as L
import numpy as np
import torch

OLD = Path.cwd()


def fit_cli_sar(root: Path, work: Path) -> Path:
    """``python cli.py fit`` of the old code, 2 steps: its last.ckpt."""
    args = [
        sys.executable, str(OLD / "cli.py"), "fit", f"--config={OLD / 'experiments/demo_sar.yaml'}",
        f"--data.init_args.root={root}", "--data.init_args.demo_data=false", "--data.init_args.in_channels=3",
        "--data.init_args.normalisation=imagenet", "--data.init_args.crop_size=64", "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--model.init_args.network={arch: Segformer, encoder: tu-test_efficientnet, in_channels: 3}",
        "--model.init_args.inference={window: 32, stride: 16, flips: [none, h]}",
        "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.logger=false",
        f"--trainer.default_root_dir={work}", f"--checkpoint.dirpath={work}", f"--last_checkpoint.dirpath={work}",
    ]  # fmt: skip
    subprocess.run(args, check=True, cwd=OLD)
    return work / "last.ckpt"


def fit_python(task: L.LightningModule, data: L.LightningDataModule, path: Path) -> Path:
    """Fit for 2 steps in Python and save as ``Trainer.save_checkpoint`` does."""
    trainer = L.Trainer(
        max_steps=2, logger=False, enable_checkpointing=False, limit_val_batches=0, enable_progress_bar=False
    )
    trainer.fit(task, datamodule=data)
    trainer.save_checkpoint(path)
    return path


def redraw(network: torch.nn.Module, generator: torch.Generator, channels: int) -> None:
    """Sparse weights {-s, 0, s} (90 % zeros), s keeping the tensor's standard deviation; BN statistics refitted.

    Normalisation layers keep their (near 1 and 0) scales and shifts.
    """
    with torch.no_grad():
        layers = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        for param in (p for layer in layers for p in layer.parameters(recurse=False)):
            if param.numel() > 1 and float(param.std()) > 0:
                draw = torch.randint(0, 20, param.shape, generator=generator)
                sign = torch.where(draw == 0, -1.0, torch.where(draw == 1, 1.0, 0.0))
                param.copy_(sign * param.std() * 10**0.5)
        norms = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches below
        network.train()
        for _ in range(4):
            network(torch.rand(4, channels, 64, 64, generator=generator) * 2 - 1)
        for norm in norms:
            norm.momentum = 0.1
        network.eval()


def shrink(source: Path, target: Path, task_class: type, seed: int) -> None:
    """Redraw the weights of a checkpoint's networks, zero its optimiser moments, re-pack the zip with deflate."""
    state = torch.load(source, map_location="cpu", weights_only=False)  # our own file, just written
    task = task_class.load_from_checkpoint(source, map_location="cpu")
    generator = torch.Generator().manual_seed(seed)
    channels = task.network_config.in_channels
    for name in ("model", "teacher"):
        if hasattr(task, name):
            redraw(getattr(task, name), generator, channels)
    assert set(task.state_dict()) == set(state["state_dict"])
    state["state_dict"] = {k: v.clone() for k, v in task.state_dict().items()}
    for optimizer in state.get("optimizer_states", []):
        for moments in optimizer["state"].values():
            for name, value in moments.items():
                if torch.is_tensor(value) and value.numel() > 1:
                    moments[name] = torch.zeros_like(value)
    plain = target.with_suffix(".plain")
    torch.save(state, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    plain.unlink()


def main() -> None:
    from datamodules.optical import OpticalDataModule
    from datamodules.sar import SARDataModule
    from lightning_modules.networks import NetworkConfig
    from lightning_modules.optical_adapter import OpticalAdapter
    from lightning_modules.optim import OptimConfig
    from lightning_modules.sar_segmenter import SARSegmenter
    from sar_inference.checkpoints import load_task
    from sar_inference.predictor import TaskPredictor
    from sar_inference.settings import InferenceConfig
    from sar_synthetic.generator import SyntheticConfig, generate_demo_data

    # The old loader (torch.load with weights_only=True) refused checkpoints fitted with a datamodule built in
    # Python: their datamodule settings hold a SyntheticConfig, which it had not registered as safe. Registered
    # here only so that the old code can read them; the new loader must read the files as they are.
    torch.serialization.add_safe_globals([SyntheticConfig])
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="legacy-"))
    root = generate_demo_data(work / "data", SyntheticConfig.tiny(), progress=False)
    network = {"arch": "Segformer", "encoder": "tu-test_efficientnet"}
    inference = InferenceConfig(window=32, stride=16, flips=("none", "h"))
    optim = OptimConfig(lr=1e-3, warmup_steps=1)
    small = {"crop_size": 64, "batch_size": 2, "num_workers": 0, "samples_per_epoch": 4}

    shrink(fit_cli_sar(root, work / "cli"), out / "sar_cli.ckpt", SARSegmenter, seed=1)
    L.seed_everything(0)
    sar = SARSegmenter(network=NetworkConfig(**network, in_channels=1), optim=optim, inference=inference)
    fitted = fit_python(sar, SARDataModule(root=str(root), **small), work / "sar_python.ckpt")
    shrink(fitted, out / "sar_python.ckpt", SARSegmenter, seed=2)
    L.seed_everything(0)
    optical = OpticalAdapter(network=NetworkConfig(**network, in_channels=3), optim=optim, inference=inference)
    fitted = fit_python(optical, OpticalDataModule(root=str(root), **small), work / "optical.ckpt")
    shrink(fitted, out / "optical_python.ckpt", OpticalAdapter, seed=3)

    rng = np.random.default_rng(0)
    sar_input = rng.integers(0, 256, (1, 24, 40), dtype=np.uint8)
    rgb_input = rng.integers(0, 256, (3, 24, 40), dtype=np.uint8)
    expected = {"sar_input": sar_input, "rgb_input": rgb_input}
    for name in ("sar_cli", "sar_python"):
        loaded = load_task(out / f"{name}.ckpt")
        expected[name] = TaskPredictor([loaded], loaded.task.inference_config).probs(sar_input)[0].numpy()
    loaded = load_task(out / "optical_python.ckpt", expected=OpticalAdapter)
    image = loaded.normaliser(torch.from_numpy(rgb_input)[None])[0]
    expected["optical_python"] = loaded.task.predict_probs(image).numpy()
    # What the same file gives when predicting with its teacher (drawn apart from the student above).
    loaded.task.predict_with = "teacher"
    expected["optical_python_teacher"] = loaded.task.predict_probs(image).numpy()
    np.savez_compressed(out / "expected.npz", **expected)
    print({p.name: p.stat().st_size for p in sorted(out.iterdir())})


if __name__ == "__main__":
    main()
