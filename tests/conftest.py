"""Shared fixtures: a tiny synthetic OEM + OEM-SAR written once per test session."""

from __future__ import annotations

import os
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
