"""The dispatcher: one line for an input error (traceback on request), no option prefixes, W&B offline defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamodules.errors import DataError
from sar_landcover.commands import main as cli_main
from sar_landcover.errors import DEBUG_ENV, input_error_message, one_line


@pytest.fixture(autouse=True)
def no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBUG_ENV, "")  # off; recorded, so what a test sets is undone after it


def test_an_input_error_prints_one_line_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["evaluate", "--predictions", str(tmp_path), "--labels", str(tmp_path / "none")]
    with pytest.raises(SystemExit) as exit_:
        cli_main(args)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'none'}: no reference label (.tif/.png) to score\n"


def test_verbose_or_the_environment_variable_keeps_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["evaluate", "--predictions", str(tmp_path), "--labels", str(tmp_path / "none")]
    with pytest.raises(DataError, match="no reference label"):
        cli_main([*args, "--verbose"])  # the flag is taken off before the command's own parser sees it
    assert os.environ[DEBUG_ENV] == "1"  # and handed to child processes (pipeline stages, DDP ranks)
    monkeypatch.setenv(DEBUG_ENV, "0")
    with pytest.raises(SystemExit):
        cli_main(args)
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(DataError):
        cli_main(args)


def test_only_errors_raised_on_purpose_lose_their_traceback() -> None:
    try:
        int("not a number")  # a ValueError raised inside Python, as a bug would be
    except ValueError as error:
        assert input_error_message(error) is None
    try:
        open("/nonexistent/file.tif")  # noqa: SIM115
    except OSError as error:
        assert input_error_message(error) == "/nonexistent/file.tif: No such file or directory"
    assert input_error_message(DataError("a.tif", "bad")) == "a.tif: bad"
    assert one_line("invalid pipeline:\n  first problem\n  second problem") == (
        "invalid pipeline: first problem; second problem"
    )


@pytest.mark.parametrize(
    "words",
    [["map", "--ckpt", "a.ckpt"], ["submit", "--out", "x"], ["pipeline", "--run", "x", "--dry-run"]],
    ids=lambda w: w[0],
)
def test_option_prefixes_are_refused_at_parse_time(words: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_main(words)
    assert exit_.value.code == 2
    assert f"unrecognized arguments: {words[1]}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environment", "mode"),
    [({"WANDB_API_KEY": ""}, "offline"), ({"WANDB_API_KEY": "  "}, "offline"), ({}, "offline"),
     ({"WANDB_API_KEY": "0123abc"}, None), ({"WANDB_MODE": "disabled"}, "disabled")],
)  # fmt: skip
def test_wandb_runs_offline_unless_a_key_or_a_mode_is_set(environment: dict[str, str], mode: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | environment
    code = "import os, sar_landcover.commands; print(os.environ.get('WANDB_MODE'))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(mode)
