"""The demo's data preparation: generated only into its own root, labelled once per root, never elsewhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sar_demo.preparation import DemoPreparation
from sar_pipeline.runner import run_pipeline
from sar_pipeline.spec import PipelineSpec, Stage1Model, Stage2Model, check_spec
from sar_pipeline.stages import StageBuilder
from sar_synthetic.layout_writer import MARKER as SYNTHETIC_MARKER
from tests.helpers.cli import REPO

STAGE1 = str(REPO / "experiments/demo_stage1.yaml")
STAGE2 = str(REPO / "experiments/demo_sar.yaml")
LABELLER = Stage1Model("labeller", [STAGE1], ["--model.init_args.adaptation.enabled=false"])


def demo_spec(tmp_path: Path, data_root: Path, labeller: Stage1Model | None = LABELLER) -> PipelineSpec:
    return PipelineSpec(
        data_root=str(data_root),
        prepare=DemoPreparation(root=str(tmp_path / "demo"), official_labeller=labeller),
        run_dir=str(tmp_path / "run"),
        stage1=[Stage1Model("a", [STAGE1])],
        stage2=[Stage2Model("method", [STAGE2])],
    )


def test_the_preparation_runs_first_on_its_own_root_only(tmp_path: Path) -> None:
    own = [s.id for s in StageBuilder(demo_spec(tmp_path, tmp_path / "demo")).build()]
    assert own[:5] == ["data", "stage1/labeller", "pseudo_labels/labeller", "official_labels", "stage1/a"]
    real = tmp_path / "real"
    (real / "OpenEarthMap-SAR").mkdir(parents=True)
    first = StageBuilder(demo_spec(tmp_path, real)).build()[0]
    assert first.id == "stage1/a"  # the real data is neither generated nor relabelled


def test_a_missing_root_that_is_not_the_demos_own_generates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = demo_spec(tmp_path, tmp_path / "mistyped")
    with pytest.raises(FileNotFoundError, match=r"mistyped: data root does not exist.*only into its own root"):
        run_pipeline(spec)
    run_pipeline(spec, dry_run=True)  # a dry run says so, and still shows the commands
    assert "dry run: " in capsys.readouterr().out
    run_pipeline(demo_spec(tmp_path, tmp_path / "demo"), dry_run=True)  # its own root may be missing
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_data_stage_is_complete_only_with_a_complete_synthetic_root(tmp_path: Path, tiny_root: Path) -> None:
    spec = demo_spec(tmp_path, tmp_path / "demo")
    data = StageBuilder(spec).build()[0]
    assert data.id == "data" and not data.is_complete()
    (tmp_path / "demo" / "OpenEarthMap-SAR").mkdir(parents=True)  # something else: make-demo-data will refuse it
    assert not data.is_complete()
    spec.prepare = DemoPreparation(root=str(tiny_root))
    spec.data_root = str(tiny_root)
    assert StageBuilder(spec).build()[0].is_complete()


def test_the_official_labeller_runs_once_per_data_root(tmp_path: Path) -> None:
    stages = StageBuilder(demo_spec(tmp_path, tmp_path / "demo")).build()
    install = stages[3]
    assert install.subcommand == "install-official-labels" and install.settings()["label_set"] == "run-labeller"
    assert not any(s.is_complete() for s in stages[1:4])
    marker = tmp_path / "demo" / "OpenEarthMap-SAR" / "train" / "OFFICIAL_LABELS.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")  # another run on the same data root installed them
    assert all(s.is_complete() for s in stages[1:4]) and not stages[4].is_complete()


def test_the_labeller_stages_skip_data_that_was_not_generated(tmp_path: Path) -> None:
    stages = StageBuilder(demo_spec(tmp_path, tmp_path / "demo")).build()
    (tmp_path / "demo").mkdir()
    assert all("not generated demo data" in (s.skip_reason() or "") for s in stages[1:4])
    (tmp_path / "demo" / SYNTHETIC_MARKER).write_text("{}")
    assert all(s.skip_reason() is None for s in stages[1:4])


def test_labeller_problems_are_reported_before_any_stage(tmp_path: Path) -> None:
    spec = demo_spec(tmp_path, tmp_path / "demo", labeller=Stage1Model("bad name", ["missing.yaml"]))
    with pytest.raises(ValueError) as error:
        check_spec(spec)
    assert "prepare: official_labeller: model name 'bad name'" in str(error.value)
    assert "missing.yaml does not exist" in str(error.value)
    spec = demo_spec(tmp_path, tmp_path / "demo", labeller=Stage1Model("a", [STAGE1]))
    with pytest.raises(ValueError, match="stage ids used twice"):
        StageBuilder(spec).build()


def test_the_demo_pipeline_on_a_mistyped_root_exits_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "pipeline", f"--config={REPO / 'experiments/demo.yaml'}",
         f"--data_root={tmp_path / 'mistyped'}", f"--run_dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'mistyped'}: data root does not exist; point data_root (--data_root DIR) at "
        "the folder holding OpenEarthMap/ and OpenEarthMap-SAR/ (the demo generates its data only into its own root "
        "data/demo; to generate it into another folder, give that folder as both --data_root and "
        "--prepare.init_args.root)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_stage1_model_starts_from_the_labeller_its_data_root_records(tmp_path: Path) -> None:
    spec = demo_spec(tmp_path, tmp_path / "demo")
    spec.stage1 = [Stage1Model("a", [STAGE1], init_from="labeller")]
    check_spec(spec)
    fit = {s.id: s for s in StageBuilder(spec).build()}["stage1/a"]
    assert fit.settings()["model"]["init_args"]["network"] == {"init_weights": "<last checkpoint of stage1/labeller>"}
    last = tmp_path / "run" / "stage1" / "labeller" / "checkpoints" / "last.ckpt"  # feed_checkpoint's default
    last.parent.mkdir(parents=True)
    last.touch()
    assert fit.settings()["model"]["init_args"]["network"]["init_weights"] == str(last)
    # A later run on the same data root starts from the checkpoint recorded when the labels were installed.
    marker = tmp_path / "demo" / "OpenEarthMap-SAR" / "train" / "OFFICIAL_LABELS.json"
    marker.parent.mkdir(parents=True)
    marker.write_text('{"checkpoint": "/elsewhere/best-200.ckpt"}')
    assert fit.settings()["model"]["init_args"]["network"]["init_weights"] == "/elsewhere/best-200.ckpt"


def test_init_from_must_name_an_earlier_or_prepared_model(tmp_path: Path) -> None:
    spec = demo_spec(tmp_path, tmp_path / "demo")
    spec.stage1 = [Stage1Model("a", [STAGE1], init_from="b"), Stage1Model("b", [STAGE1], init_from="a")]
    with pytest.raises(ValueError) as error:
        check_spec(spec)
    assert "stage1/a: init_from 'b' is neither an earlier stage-1 model nor a model of the data preparation" in str(
        error.value
    )
    assert "stage1/b: init_from" not in str(error.value)
    spec.prepare = None
    spec.stage1 = [Stage1Model("a", [STAGE1], init_from="labeller")]
    with pytest.raises(ValueError, match=r"init_from 'labeller' is neither .* \(none\)"):
        check_spec(spec)
