"""The tiny synthetic dataset the tests generate (once per session, see ``conftest.py``)."""

from sar_synthetic.config import SyntheticConfig

TINY = SyntheticConfig.tiny()
