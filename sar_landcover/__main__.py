"""``python -m sar_landcover``: the same command line as ``cli.py``."""

from sar_landcover.commands import main

main()
