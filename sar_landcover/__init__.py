"""The SAR land-cover mapper: its version and its command line (``cli.py``, ``sar-landcover``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sar-landcover-mapper")
except PackageNotFoundError:  # run from a checkout that was not installed
    __version__ = "0.0.0+unknown"
