"""The tiny synthetic dataset the tests generate (once per session, see ``conftest.py``)."""

from sar_synthetic.generator import SyntheticConfig

TINY = SyntheticConfig.tiny()
