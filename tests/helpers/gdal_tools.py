"""GDAL's own command-line tools (Debian's gdal-bin) as the tests call them: gdalinfo and the COG validator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

GDALINFO = shutil.which("gdalinfo")
SYSTEM_PYTHON = "/usr/bin/python3"
"""The Python whose ``osgeo`` (python3-gdal, pulled in by gdal-bin) ships GDAL's COG validator."""
VALIDATOR = "osgeo_utils.samples.validate_cloud_optimized_geotiff"

needs_gdalinfo = pytest.mark.skipif(
    GDALINFO is None, reason="gdalinfo not found: install GDAL's tools (Debian: apt-get install -y gdal-bin)"
)


def gdalinfo(path: Path) -> dict[str, Any]:
    """``gdalinfo -json`` of a raster, as GDAL itself reads it."""
    done = subprocess.run([GDALINFO, "-json", str(path)], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout)


def validate_cog(path: Path) -> subprocess.CompletedProcess:
    """GDAL's ``validate_cloud_optimized_geotiff.py`` on ``path``; skips the test when it is not installed."""
    probe = [SYSTEM_PYTHON, "-c", f"import {VALIDATOR}"]
    if not Path(SYSTEM_PYTHON).is_file() or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip(f"GDAL's COG validator ({VALIDATOR}) not found: install python3-gdal (Debian, with gdal-bin)")
    return subprocess.run(
        [SYSTEM_PYTHON, "-m", VALIDATOR, "--full-check=yes", str(path)], capture_output=True, text=True, timeout=300
    )
