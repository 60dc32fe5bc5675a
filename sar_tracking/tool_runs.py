"""W&B runs of the pipeline's one-process stages (selection, submission, evaluation) and the sync hint.

Fit and predict stages log through Lightning's ``WandbLogger`` (with the group, job type and run
id the runner puts in their environment) and record lineage with
:class:`sar_tracking.lineage.ArtifactLineage`; the small tool stages are logged here, after
their process finished, as runs of the same group.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sar_pipeline.spec import PipelineSpec
from sar_pipeline.stages import Stage, run_name, wandb_id
from sar_tracking.artifacts import record_lineage


def _scores_table(scores: dict[str, Any]) -> Any:
    import wandb

    rows = scores.get("rows", [])
    columns = ["what", "mIoU", *rows[0]["per_class"].keys()] if rows else ["what", "mIoU"]
    return wandb.Table(columns=columns, data=[[r["name"], r["mIoU"], *r["per_class"].values()] for r in rows])


def track_tool_stage(spec: PipelineSpec, stage: Stage) -> None:
    """One W&B run for a finished tool stage: its command, lineage and, for the evaluation, the table."""
    if os.environ.get("WANDB_MODE") == "disabled":
        return
    import wandb

    run = wandb.init(
        project=spec.tracking.project,
        entity=spec.tracking.entity,
        group=spec.tracking.group or run_name(spec),
        job_type=stage.kind,
        name=stage.id,
        id=wandb_id(spec, stage.id),
        dir=str(stage.folder),
        resume="allow",
        config={"stage": stage.id, "run_dir": spec.run_dir, "data_root": spec.data_root},
        settings=wandb.Settings(silent=True),
    )
    try:
        record_lineage(run, stage.produces, stage.uses)
        scores_file = stage.folder / "scores.json"
        if stage.kind == "evaluation" and scores_file.is_file():
            scores = json.loads(scores_file.read_text())
            run.log({"evaluation/scores": _scores_table(scores)})
            run.summary.update({f"test/{r['name']}/mIoU": r["mIoU"] for r in scores.get("rows", [])})
    finally:
        run.finish()
        wandb.teardown()  # flush now and stop the runner's W&B service, which later stages must not share


def wandb_sync_hint(spec: PipelineSpec) -> str | None:
    """How to upload the run's offline W&B runs, or None when W&B was online or disabled."""
    if os.environ.get("WANDB_MODE", "offline") != "offline":
        return None
    run = Path(spec.run_dir)
    if not any(run.glob("**/wandb/offline-run-*")):
        return None
    patterns = f"{run}/*/wandb/offline-run-* {run}/*/*/wandb/offline-run-*"
    return f"W&B runs were written offline; upload them with: wandb sync {patterns}"
