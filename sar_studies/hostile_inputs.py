"""Hostile and careless uses of every command, as one table: the probes the tests and the benchmark share.

Each probe runs ``python cli.py ...`` in a subprocess, in a folder of its own that holds a copy of a
tiny dataset (for the probe, the user's only copy), a random-weight SAR checkpoint, a SAR scene and
a folder of the user's own files (``mine/``). It is judged by its exit status, what it printed and
whether any file that was there before it ran changed:

- ``clear error``: non-zero exit, an ``error: ...`` line naming what the probe expects, no traceback;
- ``ran``: the probe expects the command to work, and it did (its check passed);
- ``raw crash``: a traceback, an error that does not name what is wrong, or a failure (or a hang)
  where the command should work;
- ``silent wrong result``: exit 0 (or still working at the time limit) where the command should have
  refused, or a wrong result;
- ``data lost``: a file that was there before is gone or changed, whatever the exit status.

Probes that another change fixes name it in ``owner``; they are listed, not faked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from affine import Affine

from datamodules.layout import SYNTHETIC_MARKER
from datamodules.rasters import raster_info, read_raster, write_raster
from lightning_modules.config_bases import REPO
from sar_pipeline.launch import CLI
from sar_studies.checkpoints import sar_checkpoint
from sar_studies.processes import child_environment
from sar_synthetic.config import SyntheticConfig
from sar_synthetic.layout_writer import generate_demo_data

Outcome = Literal["clear error", "ran", "raw crash", "silent wrong result", "data lost"]
OUTCOMES: tuple[Outcome, ...] = ("clear error", "ran", "raw crash", "silent wrong result", "data lost")
TIMEOUT = 300
"""Seconds a probe may run; a refusal comes in seconds, so a probe still working then did not refuse."""
SAR = "data/OpenEarthMap-SAR"
GRID = {"crs": "EPSG:32654", "transform": Affine(0.3, 0.05, 4e5, 0.05, -0.3, 3.9e6)}
TINY_FIT = [
    "--data.root=data",
    "--trainer.max_steps=1",
    "--trainer.val_check_interval=1",
    "--trainer.limit_val_batches=1",
    "--data.init_args.crop_size=64",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.default_root_dir=run",
]
"""What makes a demo fit or predict tiny (1 step, 64 px crops) and keeps it inside the probe's folder."""


@dataclass(frozen=True)
class Workspace:
    """A probe's folder: ``data/`` (tiny dataset), ``sar.ckpt``, ``scene.tif`` and the user's ``mine/``."""

    folder: Path

    def __truediv__(self, relative: str) -> Path:
        return self.folder / relative

    def tile(self, split: str, kind: str, number: int = 1) -> Path:
        """An OEM-SAR tile, e.g. ``tile("val", "sar_images")``."""
        area = {"train": "TrainArea", "val": "ValArea", "test": "TestArea"}[split]
        return self.folder / SAR / split / kind / f"{area}_{number:03d}.tif"


@dataclass(frozen=True)
class Probe:
    """One hostile use of a command.

    Attributes:
        name: what the probe does.
        args: the words after ``cli.py``, given the workspace (the probe's folder is the working folder).
        expect: ``refused`` (a clear error) or ``runs`` (the command must work).
        names: what the error line must contain (the file at fault, the reason).
        prepare: damages or extends the workspace before the command runs (what it writes counts as input).
        check: for ``runs``: what is wrong with the result, or None.
        env: environment changes; None removes a variable.
        replaces: glob patterns (relative to the folder) of earlier outputs the command may replace.
        owner: the change that makes this probe pass, when it is not this branch's.
    """

    name: str
    args: Callable[[Workspace], list[str]]
    expect: Literal["refused", "runs"] = "refused"
    names: tuple[str, ...] = ()
    prepare: Callable[[Workspace], None] | None = None
    check: Callable[[Workspace, subprocess.CompletedProcess], str | None] | None = None
    env: dict[str, str | None] = field(default_factory=dict)
    replaces: tuple[str, ...] = ()
    owner: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    """How a probe went."""

    probe: Probe
    outcome: Outcome
    detail: str
    seconds: float


# --- the workspace -------------------------------------------------------------------------------------


def make_base(folder: Path, data: Path | None = None) -> Path:
    """Write the files every probe's folder starts from; ``data`` is copied (else the tiny dataset is generated).

    Returns:
        ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if data is not None:
        shutil.copytree(data, folder / "data")
    else:
        generate_demo_data(folder / "data", SyntheticConfig.tiny(), progress=False)
    sar_checkpoint(folder / "sar.ckpt")
    scene = np.random.default_rng(0).integers(1, 256, (96, 128), dtype=np.uint8)
    write_raster(folder / "scene.tif", scene, **GRID)
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("the user's own notes\n")
    return folder


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (symlinks as their target path), by relative path."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            hashes[relative] = f"-> {os.readlink(path)}"
        elif path.is_file():
            hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


# --- damaging the workspace ------------------------------------------------------------------------------


def _rewrite(path: Path, data: np.ndarray) -> None:
    """Replace a tile by ``data``, keeping its georeferencing."""
    info = raster_info(path)
    path.unlink()
    write_raster(path, data, crs=info.crs, transform=info.transform)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _bands(path: Path, count: int) -> None:
    _rewrite(path, np.repeat(read_raster(path), count, axis=0))


def _resize(path: Path, height: int, width: int) -> None:
    band = read_raster(path)
    _rewrite(path, np.resize(band, (band.shape[0], height, width)))


def _label_value(path: Path, value: int) -> None:
    label = read_raster(path)
    label[0, 0, 0] = value
    _rewrite(path, label)


def _nan(path: Path) -> None:
    band = read_raster(path).astype(np.float32)
    band[0, 3, 3] = np.nan
    _rewrite(path, band)


def _scene(ws: Workspace, name: str, data: np.ndarray) -> None:
    write_raster(ws / name, data, **GRID)


def _unmark(ws: Workspace) -> None:
    """The dataset stands for a real download: it was not generated by this project."""
    (ws / "data" / SYNTHETIC_MARKER).unlink()


def _pipeline_yaml(ws: Workspace, stage1_name: str = "a") -> None:
    spec = {
        "data_root": "data",
        "run_dir": "run",
        "stage1": [{"name": stage1_name, "configs": [str(REPO / "experiments/demo_stage1.yaml")]}],
        "stage2": [{"name": "m", "configs": [str(REPO / "experiments/demo_sar.yaml")]}],
    }
    (ws / "pipe.yaml").write_text(yaml.safe_dump(spec))


def _earlier_map(ws: Workspace) -> None:
    from sar_inference.scene_mapper import map_scene

    map_scene(
        str(ws / "sar.ckpt"), str(ws / "scene.tif"), str(ws / "map.tif"), preview=str(ws / "map.png"), progress=False
    )


def _earlier_submission(ws: Workspace) -> None:
    from sar_inference.submission import submit

    submit(str(ws / "sub"), str(ws / SAR / "test/sar_images"), ckpt_path=str(ws / "sar.ckpt"), progress=False)


def _soft_maps(ws: Workspace, skip: str | None = None) -> None:
    for tile in sorted((ws / SAR / "test/sar_images").glob("*.tif")):
        if tile.name != skip:
            info = raster_info(tile)
            write_raster(ws / "pred/soft" / tile.name, np.full((9, *info.shape), 28, np.uint8), **GRID)


def _label_sets(ws: Workspace, shapes: tuple[tuple[int, int], tuple[int, int]] = ((8, 8), (8, 8))) -> None:
    for name, shape in zip(("a", "b"), shapes, strict=True):
        write_raster(ws / SAR / "train/labels_pl" / name / "T_001.tif", np.ones(shape, np.uint8))


def _foreign_set(ws: Workspace) -> None:
    _label_sets(ws)
    own = ws / SAR / "train/labels_pl/hand_made"
    own.mkdir()
    (own / "T_001.tif").write_bytes((ws / SAR / "train/labels_pl/a/T_001.tif").read_bytes())


def _kill_a_map(ws: Workspace) -> None:
    """Start a map of a large scene and kill it (SIGKILL) while it writes its temporary file."""
    _scene(ws, "big.tif", np.random.default_rng(1).integers(1, 256, (1536, 1536), dtype=np.uint8))
    args = ["map", "--ckpt_path=sar.ckpt", "--input=big.tif", "--output=big_map.tif", "--block=256", "--progress=false"]
    process = subprocess.Popen([sys.executable, str(CLI), *args], cwd=ws.folder, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while not any(ws.folder.glob(".big_map.partial-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if not any(ws.folder.glob(".big_map.partial-*")):
        raise RuntimeError("the map to kill ended before it wrote its temporary file")


# --- checks of commands that must work -------------------------------------------------------------------


def _nothing_left(ws: Workspace, result: subprocess.CompletedProcess) -> str | None:
    leftovers = sorted(p.name for p in ws.folder.iterdir() if ".partial-" in p.name)
    if leftovers:
        return f"left behind: {leftovers}"
    return None if (ws / "big_map.tif").is_file() else "no map written"


def _replaced(path: str) -> Callable[[Workspace, subprocess.CompletedProcess], str | None]:
    def check(ws: Workspace, result: subprocess.CompletedProcess) -> str | None:
        return None if (ws / path).exists() else f"{path} missing"

    return check


def _offline_run(ws: Workspace, result: subprocess.CompletedProcess) -> str | None:
    return None if any((ws / "run").glob("wandb/offline-run-*")) else "no offline W&B run written"


def _said(words: str) -> Callable[[Workspace, subprocess.CompletedProcess], str | None]:
    def check(ws: Workspace, result: subprocess.CompletedProcess) -> str | None:
        return None if words in result.stdout + result.stderr else f"did not say {words!r}"

    return check


def _warned_about(name: str) -> Callable[[Workspace, subprocess.CompletedProcess], str | None]:
    def check(ws: Workspace, result: subprocess.CompletedProcess) -> str | None:
        return None if name in result.stderr else f"no warning naming the skipped tile {name}"

    return check


# --- the probes ----------------------------------------------------------------------------------------


def _map(*extra: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["map", "--ckpt_path=sar.ckpt", "--progress=false", *extra]


def _submit(*extra: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["submit", "--ckpt_path=sar.ckpt", "--progress=false", *extra]


def _fit(config: str, *extra: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["fit", f"--config={REPO / 'experiments' / config}", *TINY_FIT, "--trainer.logger=false", *extra]


def _predict(config: str, *extra: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: [
        "predict",
        f"--config={REPO / 'experiments' / config}",
        *TINY_FIT,
        "--trainer.logger=false",
        *extra,
    ]


TEST_SAR = f"{SAR}/test/sar_images"
RNG = np.random.default_rng(2)
VAL = "ValArea_001.tif"
PROBES: tuple[Probe, ...] = (
    # map: its outputs against its inputs and the user's files, checked before any work
    Probe("map --preview over the input scene", _map("--input=scene.tif", "--output=map.tif", "--preview=scene.tif"),
          names=("scene.tif", "--preview", "input")),
    Probe("map --preview is the map itself", _map("--input=scene.tif", "--output=map.tif", "--preview=map.tif"),
          names=("map.tif", "also --output")),
    Probe("map --output over a file of the user's", _map("--input=scene.tif", "--output=mine/notes.txt"),
          names=("notes.txt", "did not write")),
    Probe("map --output names an existing folder", _map("--input=scene.tif", "--output=mine"),
          names=("mine", "folder")),
    Probe("map --output is a symlink to the scene", _map("--input=scene.tif", "--output=link.tif"),
          names=("scene.tif", "input"), prepare=lambda ws: (ws / "link.tif").symlink_to(ws / "scene.tif")),
    Probe("map --output spells the scene with ..", _map("--input=scene.tif", "--output=mine/../scene.tif"),
          names=("scene.tif", "input")),
    Probe("map --output inside the dataset", _map(f"--input={TEST_SAR}/TestArea_001.tif", f"--output={TEST_SAR}/m.tif"),
          names=("sar_images", "dataset folder")),
    Probe("map again replaces its own map and preview",
          _map("--input=scene.tif", "--output=map.tif", "--preview=map.png"),
          expect="runs", prepare=_earlier_map, check=_replaced("map.png"),
          replaces=("map.tif", "map.png", ".sar-landcover-files.json")),
    Probe("map killed, then run again: no leftover", _map("--input=big.tif", "--output=big_map.tif",
          "--inference.window=64", "--inference.stride=64", "--inference.scales=[0.25]", "--block=1536"),
          expect="runs", prepare=_kill_a_map, check=_nothing_left,
          replaces=(".big_map.partial-*",)),
    Probe("map an unreadable scene", _map("--input=bad.tif", "--output=map.tif"), names=("bad.tif", "unreadable"),
          prepare=lambda ws: (ws / "bad.tif").write_bytes(b"II*\x00 not a raster")),
    Probe("map a 3-band scene", _map("--input=rgb.tif", "--output=map.tif"), names=("rgb.tif", "3 bands"),
          prepare=lambda ws: _scene(ws, "rgb.tif", np.zeros((3, 64, 64), np.uint8))),
    Probe("map a scene with NaN", _map("--input=nan.tif", "--output=map.tif"), names=("nan.tif", "NaN"),
          prepare=lambda ws: _scene(ws, "nan.tif", np.where(np.eye(64) > 0, np.nan, 1.0).astype(np.float32))),
    Probe("map with a missing checkpoint", lambda ws: ["map", "--ckpt_path=missing.ckpt", "--input=scene.tif",
          "--output=map.tif"], names=("missing.ckpt", "does not exist")),
    Probe("map a float32 dB scene (not 8-bit)", _map("--input=db.tif", "--output=map.tif"),
          names=("db.tif", "float32", "--scaling"),
          prepare=lambda ws: _scene(ws, "db.tif", RNG.uniform(-25, 5, (64, 64)).astype(np.float32))),
    Probe("map a uint16 scene (not 8-bit)", _map("--input=u16.tif", "--output=map.tif"),
          names=("u16.tif", "uint16", "--scaling"),
          prepare=lambda ws: _scene(ws, "u16.tif", RNG.integers(0, 4000, (64, 64)).astype(np.uint16))),
    Probe("map option prefix --ckpt", lambda ws: ["map", "--ckpt=sar.ckpt", "--input=scene.tif", "--output=map.tif"],
          names=("unrecognized arguments", "--ckpt")),
    # submit: the folder it replaces as a whole
    Probe("submit --output over the SAR test tiles", _submit(f"--sar_dir={TEST_SAR}", f"--output={TEST_SAR}"),
          names=("sar_images",)),
    Probe("submit --output over the data root", _submit(f"--sar_dir={TEST_SAR}", "--output=data"),
          names=("data", "data root")),
    Probe("submit --output over a folder of the user's", _submit(f"--sar_dir={TEST_SAR}", "--output=mine"),
          names=("mine", "did not write")),
    Probe("submit --output over a folder holding the tiles", _submit("--sar_dir=scenes/tiles", "--output=scenes"),
          names=("scenes", "holds the input"),
          prepare=lambda ws: shutil.copytree(ws / TEST_SAR, ws / "scenes/tiles")),
    Probe("submit again replaces its own submission", _submit(f"--sar_dir={TEST_SAR}", "--output=sub"), expect="runs",
          prepare=_earlier_submission, check=_replaced("sub/submission.zip"), replaces=("sub/*",)),
    Probe("submit --zip_name leaves its folder", _submit(f"--sar_dir={TEST_SAR}", "--output=sub",
          "--zip_name=../../evil.zip"), names=("evil.zip", "zip name")),
    Probe("submit with a soft map missing", lambda ws: ["submit", f"--sar_dir={TEST_SAR}", "--soft_dirs=[pred]",
          "--output=sub", "--progress=false"], names=("TestArea_002.tif", "missing"),
          prepare=lambda ws: _soft_maps(ws, skip="TestArea_002.tif")),
    # evaluate, select-pseudo-labels, make-demo-data, install-official-labels
    Probe("evaluate --output over a label file", lambda ws: ["evaluate", "--predictions=pred/soft",
          f"--labels={SAR}/test/labels", f"--output={SAR}/test/labels/TestArea_001.tif"],
          names=("TestArea_001.tif", "refused"), prepare=_soft_maps),
    Probe("evaluate --output over a file of the user's", lambda ws: ["evaluate", "--predictions=pred/soft",
          f"--labels={SAR}/test/labels", "--output=mine/notes.txt"], names=("notes.txt", "did not write"),
          prepare=_soft_maps),
    Probe("evaluate a prediction of another size", lambda ws: ["evaluate", "--predictions=preds",
          f"--labels={SAR}/test/labels"], names=("preds/TestArea_001.tif", "differs"),
          prepare=lambda ws: [write_raster(ws / "preds" / f"TestArea_00{i}.tif", np.ones((8, 8), np.uint8))
                              for i in (1, 2, 3)]),
    Probe("select-pseudo-labels --output leaves the data root", lambda ws: ["select-pseudo-labels", "--root=data",
          "--sets=[a,b]", "--output=../../../../x", "--progress=false"], names=("'../../../../x'", "set name"),
          prepare=_label_sets),
    Probe("select-pseudo-labels --output over a hand-made set", lambda ws: ["select-pseudo-labels", "--root=data",
          "--sets=[a,b]", "--output=hand_made", "--progress=false"], names=("hand_made", "did not write"),
          prepare=_foreign_set),
    Probe("select-pseudo-labels sets of different sizes", lambda ws: ["select-pseudo-labels", "--root=data",
          "--sets=[a,b]", "--output=ab", "--progress=false"], names=("T_001.tif", "differs"),
          prepare=lambda ws: _label_sets(ws, ((8, 8), (6, 8)))),
    Probe("make-demo-data --root over a folder of the user's", lambda ws: ["make-demo-data", "--root=mine"],
          names=("mine", "not data this project generated")),
    Probe("make-demo-data --root over real data", lambda ws: ["make-demo-data", "--root=data"],
          names=("data", "data root"), prepare=_unmark),
    Probe("install-official-labels on real data", lambda ws: ["install-official-labels", "--root=data",
          "--label_set=a"], names=("labels", "not data this project generated"), prepare=_unmark),
    Probe("install-official-labels --label_set leaves the root", lambda ws: ["install-official-labels", "--root=data",
          "--label_set=../../x"], names=("'../../x'", "label-set name")),
    # the pipeline: refused before its first stage
    Probe("pipeline --run_dir is the data root", lambda ws: ["pipeline", "--config=pipe.yaml", "--run_dir=data"],
          names=("data", "data root"), prepare=_pipeline_yaml),
    Probe("pipeline --run_dir is a folder of the user's", lambda ws: ["pipeline", "--config=pipe.yaml",
          "--run_dir=mine"], names=("mine", "did not write"), prepare=_pipeline_yaml),
    Probe("pipeline with a model named ..", lambda ws: ["pipeline", "--config=pipe.yaml"], names=("'..'", "model name"),
          prepare=lambda ws: _pipeline_yaml(ws, "..")),
    Probe("pipeline option prefix --run", lambda ws: ["pipeline", "--config=pipe.yaml", "--run=x"],
          names=("unrecognized arguments", "--run"), prepare=_pipeline_yaml),
    # fit and predict: every folder the trainer would write, names, and the data errors inside a fit
    Probe("fit --trainer.default_root_dir is the data root", _fit("demo_sar.yaml", "--trainer.default_root_dir=data"),
          names=("data", "data root")),
    Probe("fit --checkpoint.dirpath inside the labels",
          _fit("demo_sar.yaml", f"--checkpoint.dirpath={SAR}/train/labels"),
          names=("labels", "dataset folder")),
    Probe("predict --data.prediction_dir over the test split", _predict("demo_sar.yaml",
          f"--data.prediction_dir={SAR}/test"), names=("test/labels", "dataset folder")),
    Probe("predict a pseudo-label set named labels", _predict("demo_stage1.yaml", "--data.pseudo_label_set=labels"),
          names=("'labels'", "taken by the data's own folder")),
    Probe("predict a pseudo-label set leaving the root", _predict("demo_stage1.yaml",
          "--data.pseudo_label_set=../../../x"), names=("'../../../x'", "set name")),
    Probe("fit --data.label_set leaves the root", _fit("demo_sar.yaml", "--data.label_set=../../x"),
          names=("'../../x'", "label-set name")),
    Probe("fit with a split-file entry leaving the root", _fit("demo_stage1.yaml"),
          names=("train.txt", "tile name"),
          prepare=lambda ws: (ws / "data/OpenEarthMap/train.txt").write_text("../../../../etc/passwd_1.tif\n")),
    Probe("fit option prefix --trainer.max_step", _fit("demo_sar.yaml", "--trainer.max_step=5"),
          names=("unrecognized arguments", "--trainer.max_step")),
    Probe("fit with an empty WANDB_API_KEY", lambda ws: ["fit", f"--config={REPO / 'experiments/demo_sar.yaml'}",
          *TINY_FIT, "--trainer.logger.init_args.save_dir=run"], expect="runs", check=_offline_run,
          env={"WANDB_API_KEY": "", "WANDB_MODE": None}),
    Probe("fit on a truncated SAR tile", _fit("demo_sar.yaml"), names=(VAL, "truncated"),
          prepare=lambda ws: _truncate(ws.tile("val", "sar_images"))),
    Probe("fit on a truncated tile read by a loader worker", _fit("demo_sar.yaml", "--data.init_args.num_workers=1"),
          names=(VAL, "truncated"), prepare=lambda ws: _truncate(ws.tile("val", "sar_images"))),
    Probe("fit on a 3-band SAR tile", _fit("demo_sar.yaml"), names=(VAL, "band"),
          prepare=lambda ws: _bands(ws.tile("val", "sar_images"), 3)),
    Probe("fit on labels outside 0..8 and 255", _fit("demo_sar.yaml"), names=(VAL, "outside 0..8"),
          prepare=lambda ws: _label_value(ws.tile("val", "labels"), 9)),
    Probe("fit on a SAR tile with NaN", _fit("demo_sar.yaml"), names=(VAL,),
          prepare=lambda ws: _nan(ws.tile("val", "sar_images"))),
    Probe("fit on a label of another size than its SAR tile", _fit("demo_sar.yaml"), names=(VAL, "differs"),
          prepare=lambda ws: _resize(ws.tile("val", "labels"), 48, 64)),
    Probe("fit on an RGB tile of another size than its SAR tile", _fit("demo_stage1.yaml"), names=(VAL, "differs"),
          prepare=lambda ws: _resize(ws.tile("val", "rgb_images"), 48, 64)),
    Probe("fit on an empty split folder", _fit("demo_sar.yaml"), names=("val/sar_images", "no .tif"),
          prepare=lambda ws: [p.unlink() for p in (ws / SAR / "val/sar_images").iterdir()]),
    Probe("fit on a missing split folder", _fit("demo_sar.yaml"), expect="runs",  # the download has no val labels
          check=_said("validating on a hold-out of train tiles"), prepare=lambda ws: shutil.rmtree(ws / SAR / "val")),
    Probe("fit with a SAR tile missing its label", _fit("demo_sar.yaml"), expect="runs",
          check=_warned_about("TrainArea_002.tif"), prepare=lambda ws: ws.tile("train", "labels", 2).unlink()),
    Probe("fit a demo config on a mistyped --data.root", _fit("demo_sar.yaml", "--data.root=typo_root"),
          names=("typo_root", "does not exist")),
)  # fmt: skip


# --- running and judging -------------------------------------------------------------------------------


def _environment(probe: Probe, jobs: int) -> dict[str, str]:
    env = {**child_environment(jobs), "WANDB_MODE": "offline", "WANDB_SILENT": "true", "NO_ALBUMENTATIONS_UPDATE": "1"}
    for key, value in probe.env.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def judge(
    probe: Probe, ws: Workspace, result: subprocess.CompletedProcess | None, lost: list[str]
) -> tuple[Outcome, str]:
    """The outcome of a probe and why: ``result`` is None when it was still running at the time limit."""
    if lost:
        return "data lost", f"changed or removed: {lost[:5]}"
    if result is None:
        if probe.expect == "refused":
            return "silent wrong result", f"still working after {TIMEOUT} s instead of refusing"
        return "raw crash", f"did not finish in {TIMEOUT} s"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    last = errors[-1] if errors else (result.stderr.strip().splitlines() or [""])[-1]
    if probe.expect == "runs":
        if result.returncode != 0:
            return "raw crash", f"exit {result.returncode}: {last}"
        problem = probe.check(ws, result) if probe.check else None
        return ("silent wrong result", problem) if problem else ("ran", "exit 0")
    if result.returncode == 0:
        return "silent wrong result", "exit 0: the command did not refuse"
    if "Traceback (most recent call last)" in result.stderr:
        return "raw crash", f"traceback, ending: {last}"
    missing = [n for n in probe.names if n not in last]
    if not errors or missing:
        return "raw crash", f"unclear error (without {missing}): {last}"
    return "clear error", last


def run_probe(probe: Probe, base: Path, folder: Path, jobs: int = 1) -> ProbeResult:
    """Run one probe in ``folder`` (a fresh copy of ``base``) and judge it."""
    started = time.perf_counter()
    shutil.copytree(base, folder, symlinks=True)
    ws = Workspace(folder)
    if probe.prepare is not None:
        probe.prepare(ws)
    before = {k: v for k, v in file_hashes(folder).items() if not any(fnmatch(k, p) for p in probe.replaces)}
    try:
        result: subprocess.CompletedProcess | None = subprocess.run(
            [sys.executable, str(CLI), *probe.args(ws)],
            cwd=folder, env=_environment(probe, jobs), capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        result = None
    after = file_hashes(folder)
    lost = [name for name, digest in before.items() if after.get(name) != digest]
    outcome, detail = judge(probe, ws, result, lost)
    detail = detail.removeprefix("error: ").replace(f"{folder.resolve()}/", "")  # paths as the probe gave them
    return ProbeResult(probe, outcome, detail, time.perf_counter() - started)


def run_probes(
    probes: Sequence[Probe], base: Path, folder: Path, jobs: int = 1, keep: bool = False
) -> list[ProbeResult]:
    """Run ``probes`` (``jobs`` at a time), each in ``folder/<index>``, a copy of ``base``; removed unless ``keep``."""

    def one(index: int) -> ProbeResult:
        where = folder / f"{index:02d}"
        try:
            return run_probe(probes[index], base, where, jobs)
        finally:
            if not keep:
                shutil.rmtree(where, ignore_errors=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, range(len(probes))))


def shown_command(probe: Probe) -> str:
    """The probe's command line as the table shows it: repository paths shortened, the tiny-run settings elided."""
    words = [w for w in probe.args(Workspace(Path("."))) if w not in TINY_FIT]
    shown = " ".join(words).replace(str(REPO) + "/", "")
    return f"cli.py {shown}" + (" <tiny run>" if words[0] in ("fit", "predict") else "")


def table(results: Sequence[ProbeResult]) -> str:
    """The results as a Markdown table, then the counts."""
    lines = ["| # | probe | command | outcome | detail |", "|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        owner = f" (fixed by {r.probe.owner})" if r.probe.owner else ""
        detail = r.detail.replace("|", "\\|")[:150]
        lines.append(f"| {i} | {r.probe.name} | `{shown_command(r.probe)}` | {r.outcome}{owner} | {detail} |")
    counts = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    lines += [
        "",
        f"probes: {len(results)} / clear errors: {counts['clear error']} / ran as they should: {counts['ran']} / "
        f"raw crashes: {counts['raw crash']} / silent wrong results: {counts['silent wrong result']} / "
        f"data lost: {counts['data lost']}",
    ]
    return "\n".join(lines)


def as_json(results: Sequence[ProbeResult]) -> str:
    """The results as JSON lines of name, command, outcome, detail, seconds."""
    rows = [
        {"probe": r.probe.name, "command": shown_command(r.probe), "outcome": r.outcome, "detail": r.detail,
         "owner": r.probe.owner, "seconds": round(r.seconds, 1)}
        for r in results
    ]  # fmt: skip
    return "\n".join(json.dumps(row) for row in rows)
