"""How a stage's command is started: directly (Lightning's own DDP launcher) or through SLURM's ``srun``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sar_pipeline.spec import LaunchSettings

CLI = Path(__file__).resolve().parents[1] / "cli.py"


ALLOCATION_PLACEHOLDERS = ("$SLURM_JOB_NUM_NODES", "$SLURM_NTASKS_PER_NODE")
"""What a dry run outside an allocation shows for its nodes and tasks per node (filled in under sbatch)."""


class NoAllocationError(RuntimeError):
    """Launcher ``slurm`` outside a SLURM allocation, without the layout in the settings."""


def _slurm_int(name: str) -> int | None:
    """An integer SLURM variable; per-node counts such as ``2(x3)`` give their first value."""
    value = os.environ.get(name)
    if not value:
        return None
    return int(value.split("(")[0].split(",")[0])


def slurm_layout(settings: LaunchSettings, placeholders: bool = False) -> tuple[int | str, int | str]:
    """Nodes and tasks (= devices) per node of the current allocation; the settings win when given.

    Args:
        settings: the pipeline's launch settings.
        placeholders: outside an allocation, return ``ALLOCATION_PLACEHOLDERS`` instead of failing
            (for a dry run, which prints the commands the job would run).

    Raises:
        NoAllocationError: the layout is neither in the settings nor in the SLURM environment.
    """
    nodes = settings.num_nodes or _slurm_int("SLURM_JOB_NUM_NODES") or _slurm_int("SLURM_NNODES")
    tasks = settings.devices or _slurm_int("SLURM_NTASKS_PER_NODE") or _slurm_int("SLURM_GPUS_ON_NODE")
    if nodes and tasks:
        return nodes, tasks
    if placeholders:
        return nodes or ALLOCATION_PLACEHOLDERS[0], tasks or ALLOCATION_PLACEHOLDERS[1]
    raise NoAllocationError(
        "launcher 'slurm' runs inside a SLURM allocation: submit it with `sbatch experiments/slurm/pipeline.sbatch` "
        "(or run it under salloc), give launch.num_nodes and launch.devices, use --launch.launcher=local, "
        "or add --dry-run to see the commands"
    )


def trainer_layout(settings: LaunchSettings, placeholders: bool = False) -> dict[str, int | str]:
    """The ``trainer`` settings of fit and predict stages: devices, nodes, accelerator, strategy (only those set).

    ``placeholders``: see :func:`slurm_layout`.
    """
    if settings.launcher == "slurm":
        nodes, tasks = slurm_layout(settings, placeholders)
        layout: dict[str, int | str] = {"num_nodes": nodes, "devices": tasks}
    else:
        layout = {k: v for k, v in (("num_nodes", settings.num_nodes), ("devices", settings.devices)) if v is not None}
    for key, value in (("accelerator", settings.accelerator), ("strategy", settings.strategy)):
        if value is not None:
            layout[key] = value
    return layout


def command_prefix(settings: LaunchSettings, distributed: bool, placeholders: bool = False) -> list[str]:
    """The words before ``cli.py``'s subcommand.

    Locally the interpreter runs ``cli.py`` once and Lightning starts the other ranks itself. Under
    SLURM a distributed stage gets one ``srun`` task per device on every node (Lightning's
    ``SLURMEnvironment`` reads the ranks from them); a single-process tool gets one task.
    ``placeholders``: see :func:`slurm_layout`.
    """
    python = [settings.python or sys.executable, str(CLI)]
    if settings.launcher == "local":
        return python
    if distributed:
        nodes, tasks = slurm_layout(settings, placeholders)
        return ["srun", f"--nodes={nodes}", f"--ntasks-per-node={tasks}", "--kill-on-bad-exit=1", *python]
    return ["srun", "--nodes=1", "--ntasks=1", *python]


SLURM_LOG_VARIABLE = "SAR_LANDCOVER_SLURM_LOG"
"""Set by ``experiments/slurm/pipeline.sbatch`` to the job's log file (SLURM's ``StdOut``)."""


def link_slurm_log(run_dir: str | os.PathLike) -> Path | None:
    """Link ``<run_dir>/slurm.out`` to the job's log named by :data:`SLURM_LOG_VARIABLE`, if it is set.

    Called once the run folder is claimed: the link is the pipeline's own file, made after the
    output rule has accepted the folder. An earlier link (a requeued job) is replaced; a regular
    file of that name is left alone.
    """
    log = os.environ.get(SLURM_LOG_VARIABLE)
    link = Path(run_dir) / "slurm.out"
    if not log or (link.exists() and not link.is_symlink()):
        return None
    temporary = link.with_name(f".slurm.out.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(log)
    os.replace(temporary, link)  # atomic: a requeued job's link is swapped, never missing
    return link
