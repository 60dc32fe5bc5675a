"""Shared fixtures: a tiny synthetic OEM + OEM-SAR written once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")

from sar_synthetic.layout_writer import generate_demo_data
from tests.helpers.data import TINY


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention tiny dataset; copy it before modifying anything inside."""
    root = tmp_path_factory.mktemp("data") / "tiny"
    generate_demo_data(root, TINY, progress=False)
    return root


@pytest.fixture(autouse=True)
def _no_inherited_wandb_service() -> Iterator[None]:
    """A test that ran W&B in this process leaves WANDB_SERVICE set; children of later tests would
    attach to that service, which writes their relative run folders into this process's cwd."""
    yield
    os.environ.pop("WANDB_SERVICE", None)
