"""The ablation study's quick setting end to end: every row present, every score a finite number in [0, 1]."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sar_studies.ablation import QUICK_STAGE1, STAGE1, TEST_TIME, Change, changed, stage2_variants


@pytest.mark.slow
def test_quick_study_writes_a_complete_table_of_scores(tmp_path: Path) -> None:
    out = tmp_path / "ablation"
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    command = [sys.executable, "-m", "sar_studies.ablation", "--quick", "--seeds", "0", "--out", str(out)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = json.loads((out / "results.json").read_text())
    rows = {(r["group"], r["variant"]): r for r in summary["results"]}
    stage2 = [n for n in stage2_variants(list(QUICK_STAGE1), quick=True) if not n.startswith("sar_on_")]
    expected = (
        [("stage 1", n) for n in QUICK_STAGE1]
        + [("stage 2", n) for n in stage2]
        + [("test time", n) for n in TEST_TIME]
        + [("label noise", f"{loss} @ 0.3") for loss in ("ce", "sce_lovasz")]
    )
    assert list(rows) == expected
    for key, row in rows.items():
        mean, spread = row["sar_map"]
        assert math.isfinite(mean) and 0 <= mean <= 1 and spread == 0, key  # one seed: no spread
        if key[0] != "test time":  # test-time variants reuse the method's pseudo-labels: no score of their own
            assert 0 <= row["pseudo_labels"][0] <= 1, key
    assert (out / "results.png").stat().st_size > 1000
    assert (out / "results.md").read_text().count("\n") == len(expected) + 2
    assert "official labels" in (out / "results.md").read_text()


def test_stage1_variants_keep_the_base_models_start_unless_cold() -> None:
    base = {"name": "adapted", "configs": ["a.yaml"], "args": ["--x=1"], "init_from": "official_labeller"}
    warm = changed(base, "one_view", STAGE1["one_view"][1], ["--size=1"])
    assert warm["init_from"] == "official_labeller"
    assert warm["args"] == ["--x=1", "--model.init_args.inference.flips=[none]", "--size=1"]
    assert "init_from" not in changed(base, "cold_start", STAGE1["cold_start"][1], [])
    assert "init_from" not in changed({"name": "m", "configs": ["b.yaml"]}, "ce", Change(), [])
