"""The real SAR sample the tests read: a crop of Umbra's Mount Yasur image in ``tests/data`` (CC BY 4.0)."""

from pathlib import Path

UMBRA_CROP = Path(__file__).resolve().parents[1] / "data" / "umbra_mount_yasur_crop.tif"
"""600 x 520 px, uint8, rotated UTM transform, about a quarter exact zeros; credit in ``tests/data/README.md``."""
