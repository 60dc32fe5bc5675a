"""Pooling the per-seed scores of several stage-1 benchmark runs."""

from pathlib import Path

import pytest

from sar_studies.fit_output import read_run

RUN = """stage 1 on the default synthetic data, 800 steps per run, seeds [3, 4]
source-only          target 0.417 ± 0.022  source 0.656 ± 0.025  (per seed target: 0.433, 0.402)
mean teacher + RAA   target 0.383 ± 0.042  source 0.560 ± 0.010  (per seed target: 0.353, 0.413)

| variant | target-domain val mIoU | source val mIoU |
"""


def test_a_run_gives_its_seeds_and_each_variants_scores_in_seed_order(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(RUN)
    seeds, scores = read_run(log)
    assert seeds == [3, 4]
    assert scores == {"source-only": [0.433, 0.402], "mean teacher + RAA": [0.353, 0.413]}


def test_other_output_is_refused_with_the_file_named(tmp_path: Path) -> None:
    log = tmp_path / "other.log"
    log.write_text("seed 0: wall 643 s\n")
    with pytest.raises(ValueError, match=r"other\.log: not the output"):
        read_run(log)


def test_a_variant_with_fewer_scores_than_seeds_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "cut.log"
    log.write_text(RUN.replace("0.433, 0.402", "0.433"))
    with pytest.raises(ValueError, match="source-only has 1 scores for 2 seeds"):
        read_run(log)
