"""``python cli.py pipeline``: run the stages of a pipeline YAML in order, each as its own process.

A complete stage is skipped, so a killed pipeline re-run with the same command resumes where it
stopped (a fit from its newest checkpoint). Stage output is shown live and kept in
``<stage folder>/stage.log``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from datamodules.layout import OEM_SAR_DIR
from sar_pipeline.launch import ALLOCATION_PLACEHOLDERS, NoAllocationError, command_prefix, slurm_layout
from sar_pipeline.requeue import RequeueOnSignal
from sar_pipeline.spec import PipelineSpec, check_spec
from sar_pipeline.stages import STAGE_KINDS, Stage, StageBuilder, run_name
from sar_tracking.tool_runs import track_tool_stage, wandb_sync_hint


class StageFailedError(RuntimeError):
    """A stage's process exited with an error."""


class StageInterruptedError(StageFailedError):
    """SLURM's warning signal stopped the pipeline; the job was requeued to resume it."""


def build_parser() -> ArgumentParser:
    """The ``pipeline`` command line: a pipeline YAML, any of its fields, and run controls."""
    parser = ArgumentParser(
        prog="cli.py pipeline",
        description="Run the whole method (stage 1, pseudo-labels, selection, stage 2, maps, submission, "
        "evaluation), each stage as its own process; complete stages are skipped.",
    )
    parser.add_argument("--config", action=ActionConfigFile, help="pipeline YAML (e.g. experiments/demo.yaml)")
    parser.add_class_arguments(PipelineSpec, nested_key=None)
    parser.add_argument("--dry-run", action="store_true", help="print the stage commands, run nothing")
    parser.add_argument("--from", type=str | None, default=None, help=f"start at this stage (id or kind {STAGE_KINDS})")
    parser.add_argument("--only", type=str | None, default=None, help="run only the stages of this id or kind")
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="run the selected stages even if complete; their old outputs are moved aside, not deleted",
    )
    return parser


def _matches(stage: Stage, name: str) -> bool:
    return name in (stage.id, stage.kind)


def select_stages(stages: list[Stage], start: str | None, only: str | None) -> list[Stage]:
    """The stages ``--from`` / ``--only`` pick, in pipeline order.

    Raises:
        ValueError: a name that matches no stage.
    """
    for name in (start, only):
        if name is not None and not any(_matches(s, name) for s in stages):
            raise ValueError(f"no stage is called {name!r}; stages: {[s.id for s in stages]}")
    if start is not None:
        first = next(i for i, s in enumerate(stages) if _matches(s, start))
        stages = stages[first:]
    if only is not None:
        stages = [s for s in stages if _matches(s, only)]
    return stages


def stage_command(spec: PipelineSpec, stage: Stage, dry_run: bool = False) -> list[str]:
    """The full command line of a stage as it would start now (a dry run may show the SLURM layout as placeholders)."""
    prefix = command_prefix(spec.launch, stage.distributed, placeholders=dry_run)
    return [*prefix, stage.subcommand, *stage.arguments()]


def stage_environment(spec: PipelineSpec, stage: Stage) -> dict[str, str]:
    """The stage's environment: W&B group, job type and resume mode (the run id is the logger's), unbuffered output."""
    env = dict(os.environ)
    # A stage must own its W&B service: one inherited from the runner (or a parent job) keeps writing
    # the stage's offline run after the stage exited, and is unreachable from other SLURM nodes.
    env.pop("WANDB_SERVICE", None)
    env.update(
        {
            "WANDB_RUN_GROUP": spec.tracking.group or run_name(spec),
            "WANDB_JOB_TYPE": stage.kind,
            "WANDB_RESUME": "allow",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if spec.tracking.entity:
        env["WANDB_ENTITY"] = spec.tracking.entity
    return env


def _move_aside(paths: list[Path]) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in paths:
        if path.exists():
            path.rename(path.with_name(f"{path.name}.replaced-{stamp}"))


def _run_logged(command: list[str], env: dict[str, str], log: Path, requeue: RequeueOnSignal | None = None) -> int:
    """Run ``command``, streaming its output to the console and to ``log``; its exit code.

    ``requeue``, if given, passes SLURM's warning signal on to the process while it runs.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        sink.write(f"\n$ {shlex.join(command)}\n".encode())
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if requeue is not None:
            requeue.watch(process)
        assert process.stdout is not None
        while chunk := os.read(process.stdout.fileno(), 65536):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            sink.write(chunk)
        code = process.wait()
        if requeue is not None:
            requeue.watch(None)
        return code


def _stop_for_requeue(requeue: RequeueOnSignal, stage: Stage) -> None:
    code = requeue.requeue()
    state = "requeued to resume there" if code == 0 else "NOT requeued: submit it again to resume there"
    raise StageInterruptedError(f"SLURM's time-limit warning stopped the pipeline at stage {stage.id}; job {state}")


def _test_labels(spec: PipelineSpec) -> Path:
    return Path(spec.data_root) / OEM_SAR_DIR / "test" / "labels"


def _announce(spec: PipelineSpec, builder: StageBuilder) -> None:
    sets = sorted({builder.set_folder(builder.labels_of(m)) for m in spec.stage2})
    print(
        f"pipeline {run_name(spec)}: run folder {Path(spec.run_dir).resolve()}, data {Path(spec.data_root).resolve()}"
    )
    for model in spec.stage1:
        print(f"  pseudo-labels of stage1/{model.name} -> {builder.set_folder(builder.set_name(model.name)).resolve()}")
    for folder in sets:
        print(f"  stage 2 learns from {folder.resolve()}")
    if spec.stage2:
        print(f"  submission -> {(Path(spec.run_dir) / 'submission').resolve()}")


def run_pipeline(
    spec: PipelineSpec, dry_run: bool = False, start: str | None = None, only: str | None = None, rerun: bool = False
) -> None:
    """Run (or print) the pipeline's stages in order, skipping complete ones.

    Raises:
        ValueError: an invalid pipeline or stage name.
        FileNotFoundError: ``data_root`` is missing and ``demo_data`` is off (a dry run only says so).
        StageFailedError: a stage's process failed (re-run the same command to resume), or
            (StageInterruptedError) SLURM's warning signal stopped it and the job was requeued.
        NoAllocationError: launcher ``slurm`` outside a SLURM allocation (not for a dry run).
    """
    check_spec(spec)
    if spec.launch.launcher == "slurm":
        layout = slurm_layout(spec.launch, placeholders=dry_run)  # outside an allocation: fails now, not mid-run
        if any(value in ALLOCATION_PLACEHOLDERS for value in layout):
            print(f"dry run outside a SLURM allocation: {' and '.join(ALLOCATION_PLACEHOLDERS)} are set by sbatch")
    builder = StageBuilder(spec, dry_run=dry_run)
    if not spec.demo_data and not Path(spec.data_root).is_dir():
        problem = (
            f"{spec.data_root}: data root does not exist; point data_root (--data_root DIR) at the folder holding "
            "OpenEarthMap/ and OpenEarthMap-SAR/, or set demo_data: true to generate the synthetic demo there"
        )
        if not dry_run:
            raise FileNotFoundError(problem)
        print(f"dry run: {problem}")
    stages = select_stages(builder.build(), start, only)
    _announce(spec, builder)
    requeue = None
    if spec.launch.launcher == "slurm" and not dry_run:
        requeue = RequeueOnSignal(spec.launch.requeue_grace)
        requeue.install()
    started = time.perf_counter()
    for stage in stages:
        if requeue is not None and requeue.requested:
            _stop_for_requeue(requeue, stage)
        if stage.kind == "evaluation" and not dry_run and not _test_labels(spec).is_dir():
            print(f"[{stage.id}] skipped: {_test_labels(spec)} does not exist (no test labels to score against)")
            continue
        if dry_run:
            state = "complete, would be skipped" if stage.is_complete() and not rerun else "would run"
            print(f"[{stage.id}] ({state})\n  {shlex.join(stage_command(spec, stage, dry_run=True))}")
            continue
        if stage.is_complete() and not rerun:
            print(f"[{stage.id}] complete, skipped")
            continue
        if rerun and stage.kind != "data":
            _move_aside([*stage.outputs, stage.folder / "checkpoints"])
        stage.clear_mark()
        command = stage_command(spec, stage)
        print(f"[{stage.id}] {shlex.join(command)}", flush=True)
        stage_start = time.perf_counter()
        code = _run_logged(command, stage_environment(spec, stage), stage.folder / "stage.log", requeue)
        if requeue is not None and requeue.requested:
            _stop_for_requeue(requeue, stage)  # never marked complete: it resumes from its checkpoint
        if code != 0:
            raise StageFailedError(
                f"stage {stage.id} failed (exit code {code}); its log: {stage.folder / 'stage.log'}. "
                "Re-run the same command to resume from there."
            )
        stage.mark_complete(command)
        if not stage.distributed and stage.kind != "data":
            track_tool_stage(spec, stage)
        print(f"[{stage.id}] done in {time.perf_counter() - stage_start:.1f} s", flush=True)
    if not dry_run:
        print(f"pipeline {run_name(spec)} finished in {time.perf_counter() - started:.1f} s")
        _announce(spec, builder)
        table = Path(spec.run_dir) / "evaluation" / "table.md"
        if table.is_file():
            print(f"evaluation ({table}):\n{table.read_text()}")
        hint = wandb_sync_hint(spec)
        if hint:
            print(hint)


def main(argv: list[str]) -> None:
    """Parse the ``pipeline`` command line and run it."""
    parser = build_parser()
    cfg = parser.parse_args(argv)
    init = parser.instantiate(cfg)
    spec = PipelineSpec(**{f.name: init[f.name] for f in fields(PipelineSpec)})
    try:
        run_pipeline(spec, dry_run=init.dry_run, start=init["from"], only=init.only, rerun=init.rerun)
    except (StageFailedError, ValueError, FileNotFoundError, NoAllocationError) as error:
        print(f"pipeline error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
