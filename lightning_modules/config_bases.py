"""Experiment configs built on base fragments: the configs a file names under ``base:`` are applied before it.

An experiment file states only what differs from its fragments::

    # experiments/demo_sar.yaml
    base: [experiments/base/trainer_cpu.yaml, experiments/base/wandb.yaml]
    model: ...

so ``cli.py fit --config experiments/demo_sar.yaml`` reads as ``--config experiments/base/trainer_cpu.yaml
--config experiments/base/wandb.yaml --config experiments/demo_sar.yaml``: the file wins over its bases,
later ``--config`` files and arguments win over all of them, as LightningCLI applies several configs.
Fragments may name bases of their own. A path is taken as given (absolute, or relative to the working
folder), else relative to the repository, as the pipeline's stage configs are.
"""

from __future__ import annotations

from pathlib import Path

import yaml

BASE_KEY = "base"
REPO = Path(__file__).resolve().parents[1]


def resolve_config(path: str) -> Path:
    """A config file: as given (relative to the working folder), else relative to the repository."""
    given = Path(path)
    if given.is_file() or given.is_absolute():
        return given
    return REPO / given if (REPO / given).is_file() else given


def named_bases(config: Path) -> list[str]:
    """The ``base:`` entries of a config file (none if it is not a YAML mapping or has no such key).

    Raises:
        ValueError: ``base`` is neither a path nor a list of paths.
    """
    try:
        content = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError):
        return []  # not a readable YAML file: the parser reports it
    bases = content.get(BASE_KEY) if isinstance(content, dict) else None
    if bases is None:
        return []
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ValueError(f"{config}: '{BASE_KEY}' must be a config path or a list of them, got {bases!r}")
    return bases


def _with_bases(config: Path, chain: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for name in named_bases(config):
        base = resolve_config(name)
        if not base.is_file():
            raise ValueError(f"{config}: base config {name} does not exist (nor relative to the repository {REPO})")
        if base.resolve() in chain:
            raise ValueError(f"{config}: base config {name} names itself through {[str(c) for c in chain]}")
        files += _with_bases(base, (*chain, base.resolve()))
    return [*files, config]


def expand_bases(args: list[str]) -> list[str]:
    """Command-line words with every ``--config FILE`` preceded by the ``--config`` of the bases FILE names.

    Raises:
        ValueError: a base that does not exist, names itself (a cycle), or is not a path.
    """
    expanded: list[str] = []
    words = iter(args)
    for word in words:
        if word == "--config":
            value, form = next(words, None), "separate"
        elif word.startswith("--config="):
            value, form = word.removeprefix("--config="), "joined"
        else:
            expanded.append(word)
            continue
        if value is None:  # a bare --config at the end: the parser reports it
            expanded.append(word)
            continue
        path = Path(value)
        files = _with_bases(path, (path.resolve(),)) if path.is_file() else [path]
        for file in files[:-1]:
            expanded.append(f"--config={file}")
        expanded += [word, value] if form == "separate" else [word]
    return expanded
