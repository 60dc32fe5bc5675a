"""The stage runner without running stages: stage order, commands, resume points, SLURM launching."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sar_pipeline.launch import NoAllocationError, command_prefix
from sar_pipeline.runner import (
    build_parser,
    run_pipeline,
    select_stages,
    stage_command,
    stage_environment,
    table_legend,
)
from sar_pipeline.spec import LaunchSettings, PipelineSpec, Stage1Model, Stage2Model, StageOverride, check_spec
from sar_pipeline.stages import StageBuilder, resume_checkpoint, wandb_id
from tests.helpers.cli import REPO

STAGE1 = str(REPO / "experiments/demo_stage1.yaml")
STAGE2 = str(REPO / "experiments/demo_sar.yaml")


def make_spec(tmp_path: Path, **changes: object) -> PipelineSpec:
    spec = PipelineSpec(
        data_root=str(tmp_path / "data"),
        run_dir=str(tmp_path / "run"),
        stage1=[Stage1Model("a", [STAGE1]), Stage1Model("b", [STAGE1])],
        selection="agreement",
        stage2=[
            Stage2Model("method", [STAGE2], init_from="a"),
            Stage2Model("baseline", [STAGE2], labels="official", ensemble=False),
        ],
    )
    for key, value in changes.items():
        setattr(spec, key, value)
    return spec


def test_stages_come_in_method_order_with_fixed_paths(tmp_path: Path) -> None:
    stages = StageBuilder(make_spec(tmp_path)).build()
    assert [s.id for s in stages] == [
        "stage1/a",
        "pseudo_labels/a",
        "stage1/b",
        "pseudo_labels/b",
        "selection",
        "stage2/method",
        "maps/method",
        "stage2/baseline",
        "maps/baseline",
        "submission",
        "evaluation",
    ]
    run = (tmp_path / "run").resolve()
    assert {s.id: s.folder for s in stages}["stage2/method"] == run / "stage2" / "method"
    assert {s.id: s.folder for s in stages}["submission"] == run / "submission_stage"  # submit replaces submission/


def test_stage2_gets_labels_by_path_and_stage1_weights_by_model_argument(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    stages = {s.id: s for s in StageBuilder(spec).build()}
    best = tmp_path / "run" / "stage1" / "a" / "checkpoints" / "best-10.ckpt"
    last = best.with_name("last.ckpt")
    best.parent.mkdir(parents=True)
    best.touch()
    last.touch()
    method = stages["stage2/method"].settings()
    assert method["data"]["init_args"]["label_set"] == "run-selected"
    # The end of the fit feeds the next stage (the reference's choice without labelled target val).
    assert method["model"]["init_args"]["network"]["encoder_weights"] == str(last.resolve())
    spec.feed_checkpoint = "best"
    best_fed = StageBuilder(spec).build()
    method = next(s for s in best_fed if s.id == "stage2/method").settings()
    assert method["model"]["init_args"]["network"]["encoder_weights"] == str(best.resolve())
    assert "ckpt_path" not in method  # a fresh fit: no checkpoint to resume
    assert stages["stage2/baseline"].settings()["data"]["init_args"]["label_set"] == "official"
    selection = stages["selection"].settings()
    assert selection["sets"] == ["run-a", "run-b"] and selection["mode"] == "agreement"
    soft_dirs = stages["submission"].settings()["soft_dirs"]
    assert soft_dirs == [str((tmp_path / "run" / "maps" / "method" / "soft").resolve())]


def test_an_interrupted_fit_resumes_from_its_newest_checkpoint(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    stage = next(s for s in StageBuilder(spec).build() if s.id == "stage2/method")
    last = stage.folder / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.touch()
    assert stage.settings()["ckpt_path"] == str(last)
    hpc = stage.folder / "hpc_ckpt_1.ckpt"  # written by Lightning on SLURM's SIGUSR1
    hpc.touch()
    os.utime(last, (1, 1))
    assert resume_checkpoint(stage.folder) == hpc
    assert stage.settings()["ckpt_path"] == str(hpc)
    assert not stage.is_complete()
    stage.mark_complete(["cmd"], {})
    assert stage.is_complete()
    last.unlink()  # an output went missing: not complete any more
    assert not stage.is_complete()


def test_a_stage_starts_its_own_wandb_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner's own W&B runs (tool stages) set WANDB_SERVICE; a stage sharing that service would
    # leave its offline run to be written after it exited, and cannot reach it from another node.
    monkeypatch.setenv("WANDB_SERVICE", "3-1-unix-/tmp/wandb-1-2/socket")
    spec = make_spec(tmp_path)
    stage = next(s for s in StageBuilder(spec).build() if s.id == "stage2/method")
    env = stage_environment(spec, stage)
    assert "WANDB_SERVICE" not in env
    assert env["WANDB_JOB_TYPE"] == stage.kind and env["WANDB_RUN_GROUP"] == "run"


def test_the_table_legend_says_which_maps_are_the_method_and_which_the_baseline(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    legend = table_legend(spec, StageBuilder(spec)).splitlines()
    assert legend[1] == (
        "  maps/method: stage2/method learnt from the pseudo-labels (train/labels_pl/run-selected), "
        "in the submission ensemble"
    )
    assert legend[2] == (
        "  maps/baseline: stage2/baseline learnt from the official labels (train/labels), "
        "not in the submission (a comparison arm)"
    )
    assert legend[3] == "  submission: the contest submission, the ensemble of method"


def test_from_and_only_select_stages(tmp_path: Path) -> None:
    stages = StageBuilder(make_spec(tmp_path)).build()
    assert [s.id for s in select_stages(stages, "stage2", None)][:2] == ["stage2/method", "maps/method"]
    assert [s.id for s in select_stages(stages, None, "maps")] == ["maps/method", "maps/baseline"]
    assert [s.id for s in select_stages(stages, None, "stage1/b")] == ["stage1/b"]
    with pytest.raises(ValueError, match="no stage is called 'stage3'"):
        select_stages(stages, "stage3", None)


def test_selection_can_combine_a_subset_of_the_stage1_models(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    spec.stage1.append(Stage1Model("source_only", [STAGE1]))
    with pytest.raises(ValueError, match="exactly 2"):
        check_spec(spec)
    spec.selection_models = ["a", "b"]
    check_spec(spec)
    selection = next(s for s in StageBuilder(spec).build() if s.id == "selection")
    assert selection.settings()["sets"] == ["run-a", "run-b"]
    spec.selection_models = ["a", "zzz"]
    with pytest.raises(ValueError, match="'zzz' is not a stage-1 model"):
        check_spec(spec)


def test_invalid_pipelines_are_rejected_with_every_problem(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, selection="agreement")
    spec.stage1 = [Stage1Model("a", [STAGE1]), Stage1Model("a", ["missing.yaml"]), Stage1Model("c d", [STAGE1])]
    spec.stage2 = [Stage2Model("m", [STAGE2], init_from="zzz")]
    with pytest.raises(ValueError) as error:
        check_spec(spec)
    message = str(error.value)
    for expected in ("'a' used twice", "missing.yaml does not exist", "'c d' may hold only", "exactly 2", "'zzz'"):
        assert expected in message


def test_missing_data_root_without_a_preparation_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(FileNotFoundError, match="data root does not exist"):
        run_pipeline(make_spec(tmp_path))
    run_pipeline(make_spec(tmp_path), dry_run=True)  # a dry run says so and still prints every command
    out = capsys.readouterr().out
    assert "dry run: " in out and "data root does not exist" in out and "[submission] (would run)" in out


def test_two_stages_with_one_id_are_rejected(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, selection="none", stage1=[Stage1Model("a", [STAGE1])])
    spec.stage2 = [Stage2Model("a", [STAGE2])]
    StageBuilder(spec).build()  # stage1/a and stage2/a differ
    spec.stage1 = [Stage1Model("a", [STAGE1]), Stage1Model("a", [STAGE1])]
    with pytest.raises(ValueError, match=r"stage ids used twice: \['pseudo_labels/a', 'stage1/a'\]"):
        StageBuilder(spec).build()


def test_slurm_stages_run_through_srun_with_the_allocation_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS_PER_NODE": "4"}.items():
        monkeypatch.setenv(name, value)
    spec = make_spec(tmp_path, launch=LaunchSettings(launcher="slurm"))
    stages = {s.id: s for s in StageBuilder(spec).build()}
    fit = stage_command(spec, stages["stage2/method"])
    assert fit[:4] == ["srun", "--nodes=2", "--ntasks-per-node=4", "--kill-on-bad-exit=1"]
    assert fit[5:7] == [str(REPO / "cli.py"), "fit"]
    assert fit[-1] == f"--config={stages['stage2/method'].settings_file}"
    trainer = stages["stage2/method"].settings()["trainer"]
    assert trainer["num_nodes"] == 2 and trainer["devices"] == 4
    assert stage_command(spec, stages["selection"])[:3] == ["srun", "--nodes=1", "--ntasks=1"]
    # A requeued job keeps its id, so its stages continue the same W&B runs.
    assert wandb_id(spec, "stage2/method") == "slurm4242-stage2-method"
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE")
    with pytest.raises(NoAllocationError, match="inside a SLURM allocation"):
        command_prefix(spec.launch, distributed=True)
    assert command_prefix(spec.launch, distributed=True, placeholders=True)[:3] == [
        "srun", "--nodes=2", "--ntasks-per-node=$SLURM_NTASKS_PER_NODE"
    ]  # fmt: skip


def test_the_slurm_pipeline_dry_runs_anywhere_and_a_real_run_outside_sbatch_fails_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    command = [
        sys.executable,
        str(REPO / "cli.py"),
        "pipeline",
        f"--config={REPO / 'experiments/dfc2025/pipeline.yaml'}",
    ]
    dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "srun --nodes=$SLURM_JOB_NUM_NODES" in dry.stdout.replace("'", "")
    assert "[submission] (would run)" in dry.stdout and not (tmp_path / "runs").exists()
    real = subprocess.run(
        [*command, f"--data_root={tmp_path}"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert real.returncode == 1 and "Traceback" not in real.stderr
    assert real.stderr.strip().splitlines()[-1].startswith("error: launcher 'slurm' runs inside a SLURM")


def test_sbatch_script_requeues_before_the_limit_and_keeps_its_run_folder() -> None:
    script = (REPO / "experiments/slurm/pipeline.sbatch").read_text()
    # The warning goes to the batch script (the runner), which passes it on to the running stage.
    assert "#SBATCH --signal=B:USR1@90" in script and "#SBATCH --requeue" in script
    assert "RUN_DIR=${RUN_DIR:-runs/dfc2025-${SLURM_JOB_ID}}" in script
    assert "--launch.launcher slurm" in script
    directives = dict(
        line.removeprefix("#SBATCH --").split("=", 1)
        for line in script.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )
    assert directives["ntasks-per-node"] == directives["gpus-per-node"]  # one task per GPU
    assert "/" not in directives["output"]  # SLURM refuses a log in a folder that does not exist (fresh clone)
    assert "SAR_LANDCOVER_ACTIVATE" in script


def test_pipeline_configs_parse_and_dry_run(tmp_path: Path) -> None:
    for config in ("experiments/demo.yaml", "experiments/dfc2025/pipeline.yaml"):
        parser = build_parser()
        cfg = parser.parse_args([f"--config={REPO / config}", f"--data_root={tmp_path}", "--launch.launcher=local"])
        init = parser.instantiate(cfg)
        spec = PipelineSpec(**{k: init[k] for k in PipelineSpec.__dataclass_fields__})
        check_spec(spec)
    result = subprocess.run(  # the demo's own data root, data/demo, relative to the working folder
        [sys.executable, str(REPO / "cli.py"), "pipeline", f"--config={REPO / 'experiments/demo.yaml'}",
         f"--run_dir={tmp_path / 'run'}", "--dry-run"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[data] (would run)" in result.stdout and f" make-demo-data --config={tmp_path / 'run'}" in result.stdout
    # Each command is printed with the settings its last --config would hold.
    assert f"    runner_settings.yaml:\n    root: {tmp_path / 'data' / 'demo'}\n" in result.stdout
    assert "[stage1/adapted] (would run)" in result.stdout and " fit --config=" in result.stdout
    assert "[submission] (would run)" in result.stdout
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()  # a dry run writes nothing


def test_a_failed_stage_reports_its_one_line_error(tmp_path: Path) -> None:
    from sar_pipeline import runner

    script = "import sys; print('working'); print('error: data/x.tif: has 3 band(s)', file=sys.stderr); sys.exit(1)"
    code, error = runner._run_logged([sys.executable, "-c", script], dict(os.environ), tmp_path / "stage.log")
    assert (code, error) == (1, "data/x.tif: has 3 band(s)")
    assert "error: data/x.tif" in (tmp_path / "stage.log").read_text()  # the log keeps the whole output


def test_overrides_come_after_each_chosen_model_s_own_arguments_and_before_the_settings(tmp_path: Path) -> None:
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text("trainer: {max_steps: 4}\n")
    overrides = [
        StageOverride(["stage1", "stage2"], configs=[str(sizes)], args=["--trainer.max_steps=5"]),
        StageOverride(["stage2/method"], args=["--model.init_args.network.encoder=resnet34"]),
    ]
    spec = make_spec(tmp_path, overrides=overrides)
    spec.stage2[0].args = ["--trainer.max_steps=200"]
    stages = {s.id: s for s in StageBuilder(spec).build()}
    words = stages["stage2/method"].arguments()
    assert words[1:] == [
        "--trainer.max_steps=200",
        f"--config={sizes.resolve()}",
        "--trainer.max_steps=5",
        "--model.init_args.network.encoder=resnet34",
        f"--config={stages['stage2/method'].settings_file}",
    ]
    assert stages["maps/method"].args == stages["stage2/method"].args  # its predict stage builds the same network
    assert "--model.init_args.network.encoder=resnet34" not in stages["stage2/baseline"].args
    assert "--trainer.max_steps=5" in stages["pseudo_labels/a"].args


def test_overrides_naming_no_model_or_a_missing_config_are_rejected(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, overrides=[StageOverride(["stage2/nosuch", "stage3"], configs=["nope.yaml"])])
    with pytest.raises(ValueError, match="invalid pipeline") as error:
        check_spec(spec)
    message = str(error.value)
    assert "'stage2/nosuch' is neither" in message and "'stage3' is neither" in message
    assert "config file nope.yaml does not exist" in message


def test_stage2_chains_run_side_by_side_each_with_its_share_of_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from sar_pipeline import runner

    spec = make_spec(tmp_path, launch=LaunchSettings(parallel=2))
    check_spec(spec)
    blocks = runner.side_by_side(StageBuilder(spec).build())
    chains = next(block for block in blocks if len(block) > 1)
    assert [[s.id for s in chain] for chain in chains] == [
        ["stage2/method", "maps/method"],
        ["stage2/baseline", "maps/baseline"],
    ]
    assert all(len(block) == 1 and len(block[0]) == 1 for block in blocks if block is not chains)
    runs: list[tuple[str, float, float, str | None, bool]] = []
    lock = threading.Lock()

    def fake_run(
        command: list[str], env: dict[str, str], log: Path, requeue: object = None, live: bool = True
    ) -> tuple[int, None]:
        start = time.perf_counter()
        time.sleep(0.3)
        with lock:
            runs.append((log.parent.name, start, time.perf_counter(), env.get("OMP_NUM_THREADS"), live))
        return 0, None

    monkeypatch.setattr(runner, "_run_logged", fake_run)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    runner._run_side_by_side(spec, chains, rerun=False)
    by_folder = {name: (start, end) for name, start, end, _, _ in runs}
    assert by_folder["method"][0] < by_folder["baseline"][1] and by_folder["baseline"][0] < by_folder["method"][1]
    assert {threads for *_, threads, _ in runs} == {"2"} and not any(live for *_, live in runs)
    assert all((stage.folder / "stage.json").is_file() for chain in chains for stage in chain)  # marked done


def test_side_by_side_stages_need_the_local_launcher(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, launch=LaunchSettings(launcher="slurm", parallel=2))
    with pytest.raises(ValueError, match=r"launch\.parallel > 1 .* needs launcher 'local'"):
        check_spec(spec)
