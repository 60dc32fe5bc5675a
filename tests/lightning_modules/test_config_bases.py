"""Config files that build on base fragments: order, nesting, and the errors a careless base list gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_modules.config_bases import REPO, expand_bases, resolve_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bases_come_before_the_file_that_names_them_depth_first(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "trainer: {max_steps: 1}\n")
    b = write(tmp_path / "b.yaml", f"base: {a}\ntrainer: {{max_steps: 2}}\n")
    c = write(tmp_path / "c.yaml", "trainer: {max_steps: 3}\n")
    exp = write(tmp_path / "exp.yaml", f"base: [{b}, {c}]\nmodel: {{}}\n")
    other = write(tmp_path / "other.yaml", "data: {}\n")
    words = expand_bases(["fit", "--config", str(exp), "--trainer.max_steps=9", f"--config={other}"])
    assert words == [
        "fit", f"--config={a}", f"--config={b}", f"--config={c}", "--config", str(exp), "--trainer.max_steps=9",
        f"--config={other}",
    ]  # fmt: skip


def test_words_without_bases_are_left_alone(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", "trainer: {max_steps: 1}\n")
    words = ["fit", f"--config={plain}", "--config", "{trainer: {max_steps: 2}}", "--data.root=x", "--config"]
    assert expand_bases(words) == words  # a YAML string and a dangling --config are the parser's to judge


def test_a_missing_base_or_a_cycle_is_an_error_naming_the_file(tmp_path: Path) -> None:
    missing = write(tmp_path / "missing.yaml", "base: [nowhere/trainer.yaml]\n")
    with pytest.raises(ValueError, match=r"missing.yaml: base config nowhere/trainer.yaml does not exist"):
        expand_bases([f"--config={missing}"])
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    write(first, f"base: [{second}]\n")
    write(second, f"base: [{first}]\n")
    with pytest.raises(ValueError, match="names itself"):
        expand_bases([f"--config={first}"])
    bad = write(tmp_path / "bad.yaml", "base: {trainer: cpu}\n")
    with pytest.raises(ValueError, match="must be a config path or a list of them"):
        expand_bases([f"--config={bad}"])


def test_base_paths_are_found_relative_to_the_repository_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config("experiments/base/trainer_cpu.yaml") == REPO / "experiments/base/trainer_cpu.yaml"
    words = expand_bases([f"--config={REPO / 'experiments/demo_sar.yaml'}"])
    assert words[:2] == [
        f"--config={REPO / 'experiments/base/trainer_cpu.yaml'}",
        f"--config={REPO / 'experiments/base/wandb.yaml'}",
    ]
