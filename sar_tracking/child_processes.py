"""The environment a child process gets so that its W&B runs stay its own."""

from __future__ import annotations

import os
from collections.abc import Mapping

WANDB_SERVICE_VARIABLE = "WANDB_SERVICE"
"""Set by ``wandb.init`` in this process and inherited by its children, which then talk to this
process's W&B service (wandb 0.31)."""


def environment_with_own_wandb_service(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (this process's environment by default) without the W&B service of this process.

    A child attached to its parent's service writes its offline run's console log into a folder
    resolved against the parent's working directory, not its own (``save_dir=run`` of a child in
    another folder lands in the parent's ``run/``), keeps writing after the child exited, and cannot
    reach the service from another SLURM node.
    """
    child = dict(os.environ if env is None else env)
    child.pop(WANDB_SERVICE_VARIABLE, None)
    return child
