"""``python cli.py pipeline``: run the stages of a pipeline YAML in order, each as its own process.

A complete stage is skipped, so a killed pipeline re-run with the same command resumes where it
stopped (a fit from its newest checkpoint). Stage output is shown live and kept in
``<stage folder>/stage.log``. Before the first stage starts, everything the stages to run would
write is checked against the output rule (:mod:`datamodules.output_safety`). With
``launch.parallel`` > 1 the stage-2 models' fit-and-map chains run side by side (their output goes
to their logs only, and a line when each stage ends).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from datamodules.layout import OEM_SAR_DIR
from datamodules.output_safety import Output, check_outputs, is_data_root, resolved
from sar_landcover.errors import HELP_EPILOG
from sar_pipeline.launch import ALLOCATION_PLACEHOLDERS, command_prefix, link_slurm_log, slurm_layout
from sar_pipeline.requeue import RequeueOnSignal
from sar_pipeline.spec import PipelineSpec, check_spec
from sar_pipeline.stages import STAGE_KINDS, Stage, StageBuilder, run_name, settings_text
from sar_tracking.child_processes import environment_with_own_wandb_service
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
        epilog=HELP_EPILOG,
        allow_abbrev=False,  # a typo such as --run for --run_dir fails at parse time
    )
    parser.add_argument("--config", action=ActionConfigFile, help="pipeline YAML (e.g. experiments/demo.yaml)")
    parser.add_class_arguments(PipelineSpec, nested_key=None)
    parser.add_argument("--dry-run", action="store_true", help="print the stage commands, run nothing")
    parser.add_argument(
        "--from", type=str | None, default=None, help=f"start at this stage (an id, or a kind such as {STAGE_KINDS})"
    )
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
    """The full command line of a stage; its last ``--config`` is the stage's settings file.

    A dry run may show the SLURM layout as placeholders (outside an allocation).
    """
    prefix = command_prefix(spec.launch, stage.distributed, placeholders=dry_run)
    return [*prefix, stage.subcommand, *stage.arguments()]


def stage_environment(spec: PipelineSpec, stage: Stage, threads: int | None = None) -> dict[str, str]:
    """The stage's environment: W&B group, job type and resume mode (the run id is the logger's), unbuffered
    output, and ``threads`` torch threads when given (stages side by side)."""
    env = environment_with_own_wandb_service()
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
    if threads is not None:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return env


def _move_aside(paths: list[Path]) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in paths:
        if path.exists():
            path.rename(path.with_name(f"{path.name}.replaced-{stamp}"))


def _run_logged(
    command: list[str], env: dict[str, str], log: Path, requeue: RequeueOnSignal | None = None, live: bool = True
) -> tuple[int, str | None]:
    """Run ``command``, streaming its output to ``log`` (and to the console if ``live``); its exit code and
    last ``error:`` line.

    ``requeue``, if given, passes SLURM's warning signal on to the process while it runs.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    tail = b""
    with log.open("ab") as sink:
        sink.write(f"\n$ {shlex.join(command)}\n".encode())
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        if requeue is not None:
            requeue.watch(process)
        while chunk := os.read(process.stdout.fileno(), 65536):
            if live:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            sink.write(chunk)
            tail = (tail + chunk)[-65536:]
        code = process.wait()
        if requeue is not None:
            requeue.watch(None)
    errors = [line for line in tail.decode(errors="replace").splitlines() if line.startswith("error: ")]
    return code, errors[-1].removeprefix("error: ") if errors else None


def _stop_for_requeue(requeue: RequeueOnSignal, stage: Stage) -> None:
    code = requeue.requeue()
    state = "requeued to resume there" if code == 0 else "NOT requeued: submit it again to resume there"
    raise StageInterruptedError(f"SLURM's time-limit warning stopped the pipeline at stage {stage.id}; job {state}")


def check_pipeline_outputs(spec: PipelineSpec, stages: list[Stage], rerun: bool, claim: bool) -> None:
    """Refuse, before any stage starts, anything the stages that will run would write against the output rule.

    Checked: the run folder, the folder of every stage that is not complete (or every selected one
    with ``rerun``) and what it writes besides (pseudo-label sets, maps, the submission, generated
    data). With ``claim``, the run folder is created and marked; stage folders are claimed as they start.

    Raises:
        OutputRefusedError: the first path that may not be written.
    """
    outputs = [Output(spec.run_dir, "folder", "run_dir")]
    for stage in stages:
        if rerun or not stage.is_complete():
            outputs += [Output(stage.folder, "folder", f"the folder of stage {stage.id}"), *stage.writes]
    root = resolved(spec.data_root)
    check_outputs("pipeline", outputs, inputs=[root] if is_data_root(root) else [], claim=False)
    if claim:
        check_outputs("pipeline", outputs[:1])


def side_by_side(stages: list[Stage]) -> list[list[list[Stage]]]:
    """The stages as blocks of chains: the stage-2 models' fit-and-map chains in one block (run side by
    side), every other stage a block of one chain of one stage; pipeline order is kept."""
    blocks: list[list[list[Stage]]] = []
    chains: dict[str, list[Stage]] = {}
    for stage in stages:
        if stage.kind in ("stage2", "maps"):
            if not chains:
                blocks.append([])
            model = stage.id.split("/", 1)[1]
            if model not in chains:
                chains[model] = []
                blocks[-1].append(chains[model])
            chains[model].append(stage)
        else:
            chains = {}
            blocks.append([[stage]])
    return blocks


_OUTPUT_LOCK = threading.Lock()


def _say(message: str) -> None:
    """Print whole lines at once: stages run side by side report from threads, and a line of one
    must not start in the middle of another's (the benchmarks parse them)."""
    with _OUTPUT_LOCK:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()


def _run_stage(
    spec: PipelineSpec, stage: Stage, rerun: bool, threads: int | None = None, requeue: RequeueOnSignal | None = None
) -> None:
    """Run one stage unless it is complete (or does not apply).

    Raises:
        StageFailedError: its process failed, or (StageInterruptedError) SLURM's warning signal
            stopped it (``requeue``) and the job was requeued.
    """
    reason = stage.skip_reason() if stage.skip_reason is not None else None
    if reason is not None:
        _say(f"[{stage.id}] skipped: {reason}")
        return
    if stage.is_complete() and not rerun:
        _say(f"[{stage.id}] complete, skipped")
        return
    if rerun:
        _move_aside([*stage.outputs, stage.folder / "checkpoints"])
    stage.clear_mark()
    check_outputs("pipeline", [Output(stage.folder, "folder", f"the folder of stage {stage.id}")])
    settings = stage.write_settings()  # after moving old checkpoints aside: they decide the resume point
    command = stage_command(spec, stage)
    log = stage.folder / "stage.log"
    _say(f"[{stage.id}] {shlex.join(command)}" + (f"\n[{stage.id}] output: {log}" if threads else ""))
    stage_start = time.perf_counter()
    env = stage_environment(spec, stage, threads)
    code, error = _run_logged(command, env, log, requeue, live=threads is None)
    if requeue is not None and requeue.requested:
        _stop_for_requeue(requeue, stage)  # never marked complete: it resumes from its checkpoint
    if code != 0:
        raise StageFailedError(
            f"stage {stage.id} failed (exit code {code}"
            + (f": {error}" if error else "")
            + f"); its log: {log}. Fix the cause and re-run the same command to resume."
        )
    stage.mark_complete(command, settings)
    if not stage.distributed and stage.tracked:
        track_tool_stage(spec, stage)
    _say(f"[{stage.id}] done in {time.perf_counter() - stage_start:.1f} s")


def _run_side_by_side(spec: PipelineSpec, chains: list[list[Stage]], rerun: bool) -> None:
    """Run chains at the same time, each stage with its share of the cores; the first failure is raised
    after every chain stopped."""
    jobs = min(spec.launch.parallel, len(chains))
    threads = max(1, (os.cpu_count() or 1) // jobs)

    def run_chain(chain: list[Stage]) -> None:
        for stage in chain:
            _run_stage(spec, stage, rerun, threads)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_chain, chain) for chain in chains]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]


def check_data_root(spec: PipelineSpec) -> None:
    """The data root exists, or the pipeline's data preparation makes it.

    Raises:
        FileNotFoundError: neither (e.g. a mistyped ``--data_root``): nothing is generated anywhere else.
    """
    root = Path(spec.data_root).resolve()
    if root.is_dir() or (spec.prepare is not None and spec.prepare.prepares(root)):
        return
    hint = f" ({spec.prepare.describe()})" if spec.prepare is not None else ""
    raise FileNotFoundError(
        f"{spec.data_root}: data root does not exist; point data_root (--data_root DIR) at the folder holding "
        f"OpenEarthMap/ and OpenEarthMap-SAR/{hint}"
    )


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
    if spec.prepare is not None and not spec.prepare.prepares(builder.root):
        print(f"  data preparation skipped: {builder.root} is not the root it makes ({spec.prepare.describe()})")


def table_legend(spec: PipelineSpec, builder: StageBuilder) -> str:
    """What each row of the evaluation table is: which maps are the method's and which a baseline's."""
    lines = []
    for model in spec.stage2:
        source = {"pseudo": "the pseudo-labels", "official": "the official labels"}.get(model.labels, model.labels)
        role = "in the submission ensemble" if model.ensemble else "not in the submission (a comparison arm)"
        folder = builder.set_folder(builder.labels_of(model)).relative_to(builder.root / OEM_SAR_DIR)
        lines.append(f"  maps/{model.name}: stage2/{model.name} learnt from {source} ({folder}), {role}")
    members = [m.name for m in spec.stage2 if m.ensemble]
    if members:
        lines.append(f"  submission: the contest submission, the ensemble of {', '.join(members)}")
    lines.append("  train/...: label sets scored against the train truth (labels: the official labels)")
    return "rows:\n" + "\n".join(lines)


def run_pipeline(
    spec: PipelineSpec, dry_run: bool = False, start: str | None = None, only: str | None = None, rerun: bool = False
) -> None:
    """Run (or print) the pipeline's stages in order, skipping complete ones.

    Raises:
        ValueError: an invalid pipeline or stage name.
        FileNotFoundError: ``data_root`` is missing and the pipeline's data preparation does not make it
            (a dry run only says so).
        StageFailedError: a stage's process failed (re-run the same command to resume), or
            (StageInterruptedError) SLURM's warning signal stopped it and the job was requeued.
        NoAllocationError: launcher ``slurm`` outside a SLURM allocation (not for a dry run).
    """
    check_spec(spec)
    if spec.launch.launcher == "slurm":
        layout = slurm_layout(spec.launch, placeholders=dry_run)  # outside an allocation: fails now, not mid-run
        if any(value in ALLOCATION_PLACEHOLDERS for value in layout):
            print(f"dry run outside a SLURM allocation: {' and '.join(ALLOCATION_PLACEHOLDERS)} are set by sbatch")
    try:
        check_data_root(spec)
    except FileNotFoundError as problem:
        if not dry_run:
            raise
        print(f"dry run: {problem}")
    builder = StageBuilder(spec, dry_run=dry_run)
    stages = select_stages(builder.build(), start, only)
    check_pipeline_outputs(spec, stages, rerun, claim=not dry_run)
    if not dry_run:
        link_slurm_log(spec.run_dir)
    _announce(spec, builder)
    started = time.perf_counter()
    requeue = None
    if spec.launch.launcher == "slurm" and not dry_run:
        requeue = RequeueOnSignal(spec.launch.requeue_grace)
        requeue.install()
    if dry_run:
        for stage in stages:
            state = "complete, would be skipped" if stage.is_complete() and not rerun else "would run"
            print(f"[{stage.id}] ({state})\n  {shlex.join(stage_command(spec, stage, dry_run=True))}")
            print(textwrap.indent(f"{stage.settings_file.name}:\n{settings_text(stage.settings()).rstrip()}", "    "))
    else:
        for block in side_by_side(stages) if spec.launch.parallel > 1 else [[[s]] for s in stages]:
            if len(block) > 1:
                _run_side_by_side(spec, block, rerun)
                continue
            for stage in block[0]:
                if requeue is not None and requeue.requested:
                    _stop_for_requeue(requeue, stage)
                _run_stage(spec, stage, rerun, requeue=requeue)
    if not dry_run:
        print(f"pipeline {run_name(spec)} finished in {time.perf_counter() - started:.1f} s")
        _announce(spec, builder)
        table = Path(spec.run_dir) / "evaluation" / "table.md"
        if table.is_file():
            print(f"evaluation ({table}):\n{table.read_text()}{table_legend(spec, builder)}")
        hint = wandb_sync_hint(spec)
        if hint:
            print(hint)


def main(argv: list[str]) -> None:
    """Parse the ``pipeline`` command line and run it (the dispatcher turns its errors into one line)."""
    parser = build_parser()
    cfg = parser.parse_args(argv)
    init = parser.instantiate(cfg)
    spec = PipelineSpec(**{f.name: init[f.name] for f in fields(PipelineSpec)})
    run_pipeline(spec, dry_run=init.dry_run, start=init["from"], only=init.only, rerun=init.rerun)
